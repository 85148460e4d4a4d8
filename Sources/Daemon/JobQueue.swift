import ControlProtocol
import Foundation
import Jobs
#if canImport(Glibc)
import Glibc
#endif

/// A change the queue reports to observers (the control server's `watch`, logging).
public enum QueueEvent: Sendable {
    case job(JobRecord)
    case progress(JobProgress)
    case paused(Bool)
}

/// Why a queue operation was refused.
public enum QueueError: Error, Equatable, CustomStringConvertible {
    case notFound(String)
    case conflict(String)
    case forbidden(String)
    public var description: String {
        switch self {
        case .notFound(let s), .conflict(let s), .forbidden(let s): return s
        }
    }
}

/// The persistent priority queue: order by priority (highest first), then, among equal
/// priorities, jobs of the model already loaded, then submission order (FIFO). Every change
/// is journaled (fsynced) before it is acknowledged. Thread-safe: one lock guards all state;
/// the worker blocks in `next` on its condition.
public final class JobQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private let journal: QueueJournal
    private var jobs: [String: JobRecord] = [:]
    private var cancelRequests = Set<String>()
    private var progressByID: [String: JobProgress] = [:]
    private let observers = EventFanOut<QueueEvent>()
    private(set) public var nextNumber: Int
    private(set) public var paused: Bool
    /// Terminal jobs kept for `history`; older ones are dropped from the journal (their outbox folder stays).
    public var keepHistory: Int
    /// Called (under the queue lock) when a job becomes terminal without the worker: it writes
    /// the outbox folder's `result.json` before the state change is journaled.
    var writeTerminalResult: ((JobRecord) throws -> Void)?

    /// Who may change jobs and the queue; the `uid` of every change is checked against it.
    public let policy: ControlPolicy

    /// Loads the queue persisted in `stateDirectory`.
    /// - Parameter policy: permission rules; the daemon passes the one it made at start-up.
    public init(stateDirectory: URL, keepHistory: Int, policy: ControlPolicy = .forThisProcess()) throws {
        self.policy = policy
        journal = QueueJournal(directory: stateDirectory)
        let snapshot = try journal.load()
        nextNumber = snapshot.nextNumber
        paused = snapshot.paused
        self.keepHistory = keepHistory
        for job in snapshot.jobs { jobs[job.id] = job }
    }

    // MARK: observers

    /// Registers `handler` for queue events; returns a token for `removeObserver`.
    /// Handlers run on the thread that made the change, under no lock; they must be quick.
    public func addObserver(_ handler: @escaping (QueueEvent) -> Void) -> Int {
        observers.subscribe(handler)
    }

    /// Removes the observer registered with `token`.
    public func removeObserver(_ token: Int) {
        observers.unsubscribe(token)
    }

    /// Called without the queue's lock held.
    private func emit(_ events: [QueueEvent]) {
        observers.publish(events)
    }

    // MARK: reading

    public func job(_ id: String) -> JobRecord? {
        condition.lock()
        defer { condition.unlock() }
        return jobs[resolve(id)]
    }

    /// All jobs in queue order (running first, then queued/held by selection order, then finished newest first).
    public func all() -> [JobRecord] {
        condition.lock()
        defer { condition.unlock() }
        let live = jobs.values.filter { !$0.state.isFinal }.sorted(by: JobQueue.order(loadedModel: nil))
        let done = jobs.values.filter { $0.state.isFinal }.sorted { ($0.finished ?? 0, $0.number) > ($1.finished ?? 0, $1.number) }
        return live + done
    }

    public func progress() -> JobProgress? {
        condition.lock()
        defer { condition.unlock() }
        return progressByID.values.first
    }

    public func contains(number: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return jobs[JobRecord.id(number: number)] != nil
    }

    /// Accepts `000042`, `42`.
    private func resolve(_ id: String) -> String {
        if jobs[id] != nil { return id }
        if let n = Int(id) { return JobRecord.id(number: n) }
        return id
    }

    /// Selection order: running, then priority (high first), loaded model, FIFO.
    static func order(loadedModel: String?) -> (JobRecord, JobRecord) -> Bool {
        return { a, b in
            if (a.state == .running) != (b.state == .running) { return a.state == .running }
            if a.priority != b.priority { return a.priority > b.priority }
            if let m = loadedModel, (a.model == m) != (b.model == m) { return a.model == m }
            return a.number < b.number
        }
    }

    // MARK: changes

    /// Journals `changed` (and `extra`), then applies it in memory: a change that could not be
    /// written is not made, so the state in memory is always the last one fully written.
    private func commit(_ changed: [JobRecord], extra: [QueueJournal.Entry] = []) throws {
        try journal.append(changed.map { .put($0) } + extra)
        for job in changed { jobs[job.id] = job }
        trimHistoryAndCompact()
    }

    /// Housekeeping after a commit; the commit stands whatever happens here (a full disk
    /// only postpones it to a later commit).
    private func trimHistoryAndCompact() {
        do {
            let finished = jobs.values.filter { $0.state.isFinal }
            if finished.count > keepHistory + 64 {
                let drop = finished.sorted { ($0.finished ?? 0, $0.number) < ($1.finished ?? 0, $1.number) }
                    .prefix(finished.count - keepHistory)
                try journal.append(drop.map { .remove($0.id) })
                for job in drop { jobs[job.id] = nil }
            }
            if journal.entriesSinceSnapshot > max(1000, 2 * jobs.count) {
                try journal.compact(.init(nextNumber: nextNumber, paused: paused,
                                          jobs: jobs.values.sorted { $0.number < $1.number }))
            }
        } catch {
            Log.warning("queue journal: housekeeping postponed: \(error)")
        }
    }

    /// Adds newly claimed jobs durably (one fsync for the batch) and wakes the worker.
    public func add(_ newJobs: [JobRecord]) throws {
        guard !newJobs.isEmpty else { return }
        condition.lock()
        let fresh = newJobs.filter { jobs[$0.id] == nil }
        let next = max(nextNumber, (newJobs.map(\.number).max() ?? 0) + 1)
        do {
            try commit(fresh, extra: [.nextNumber(next)])
        } catch {
            condition.unlock()
            throw error
        }
        nextNumber = next
        condition.broadcast()
        condition.unlock()
        emit(fresh.map { .job($0) })
    }

    /// Blocks until a job may run (not paused, one queued) or `shouldStop()` holds; marks it
    /// running with one more attempt, durably, before returning it.
    public func next(loadedModel: String?, idle: () -> Void, shouldStop: () -> Bool) -> JobRecord? {
        condition.lock()
        while true {
            if shouldStop() { condition.unlock(); return nil }
            if !paused, let pick = jobs.values.filter({ $0.state == .queued })
                .min(by: JobQueue.order(loadedModel: loadedModel)) {
                var job = pick
                job.state = .running
                job.attempts += 1
                job.started = Date().timeIntervalSince1970
                job.error = nil
                do {
                    try commit([job])
                } catch {
                    Log.error("queue: cannot journal the start of job \(job.id): \(error); retrying in 5 s")
                    _ = condition.wait(until: Date().addingTimeInterval(5))
                    continue
                }
                condition.unlock()
                emit([.job(job)])
                return job
            }
            condition.unlock()
            idle()
            condition.lock()
            _ = condition.wait(until: Date().addingTimeInterval(1))
        }
    }

    /// Wakes a waiting worker (used at shutdown).
    public func wake() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    /// Records the outcome of a run: terminal state, or back to `queued` when interrupted by
    /// shutdown or a death that is no strike (`attempts` is then given back).
    public func finish(_ id: String, state: JobState, error: String?, interrupted: Bool = false) throws {
        condition.lock()
        guard var job = jobs[id] else { condition.unlock(); return }
        job.state = state
        job.error = error
        if interrupted { job.attempts = max(0, job.attempts - 1) } else { job.finished = Date().timeIntervalSince1970 }
        cancelRequests.remove(id)
        progressByID[id] = nil
        do { try commit([job]) } catch { condition.unlock(); throw error }
        condition.broadcast()
        condition.unlock()
        emit([.job(job)])
    }

    /// The worker process died of a fault (`reason`: the signal) while running job `id`: the
    /// run keeps its attempt, which makes a strike; at `maxStrikes` the job is failed with a
    /// `result.json` naming the signal, else it is queued again.
    func strike(_ id: String, reason: String, maxStrikes: Int) throws {
        condition.lock()
        guard var job = jobs[id], job.state == .running else { condition.unlock(); return }
        cancelRequests.remove(id)
        progressByID[id] = nil
        if job.attempts >= maxStrikes {
            job.state = .failed
            job.error = "the worker process died of \(reason) \(job.attempts) times while running this job; not retried"
            job.finished = Date().timeIntervalSince1970
            do { try writeTerminalResult?(job) } catch { condition.unlock(); throw error }
        } else {
            job.state = .queued
            job.error = "the worker process died of \(reason) while running it (strike \(job.attempts) of \(maxStrikes))"
        }
        do { try commit([job]) } catch { condition.unlock(); throw error }
        condition.broadcast()
        condition.unlock()
        if job.state == .failed {
            Log.error("job \(job.id) failed: \(job.error ?? "")")
        } else {
            Log.warning("job \(job.id): \(job.error ?? ""); queued again with a fresh worker")
        }
        emit([.job(job)])
    }

    public func reportProgress(_ progress: JobProgress) {
        condition.lock()
        progressByID = [progress.id: progress]
        condition.unlock()
        emit([.progress(progress)])
    }

    /// True once `cancel` was asked for the running job `id`.
    public func isCancelRequested(_ id: String) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelRequests.contains(id)
    }

    private func modify(_ id: String, uid: UInt32, _ change: (inout JobRecord) throws -> Void) throws -> JobRecord {
        condition.lock()
        defer { condition.unlock() }
        guard var job = jobs[resolve(id)] else { throw QueueError.notFound("no job \(id)") }
        guard policy.mayChangeJob(owner: job.owner, caller: uid) else {
            throw QueueError.forbidden("job \(job.id) belongs to uid \(job.owner)")
        }
        try change(&job)
        if job != jobs[job.id] {
            try commit([job])
            condition.broadcast()
        }
        return job
    }

    /// Cancels a queued or held job (its outbox folder gets a `cancelled` result), or asks the
    /// worker to stop a running one between steps.
    @discardableResult
    public func cancel(_ id: String, uid: UInt32) throws -> JobRecord {
        let job = try modify(id, uid: uid) { job in
            switch job.state {
            case .queued, .held:
                job.state = .cancelled
                job.finished = Date().timeIntervalSince1970
                job.error = "cancelled before it ran"
                try writeTerminalResult?(job)
            case .running:
                cancelRequests.insert(job.id)
            default:
                throw QueueError.conflict("job \(job.id) is already \(job.state.rawValue)")
            }
        }
        emit([.job(job)])
        return job
    }

    @discardableResult
    public func hold(_ id: String, uid: UInt32) throws -> JobRecord {
        let job = try modify(id, uid: uid) { job in
            guard job.state == .queued || job.state == .held else {
                throw QueueError.conflict("job \(job.id) is \(job.state.rawValue); only queued jobs can be held")
            }
            job.state = .held
        }
        emit([.job(job)])
        return job
    }

    @discardableResult
    public func release(_ id: String, uid: UInt32) throws -> JobRecord {
        let job = try modify(id, uid: uid) { job in
            guard job.state == .held || job.state == .queued else {
                throw QueueError.conflict("job \(job.id) is \(job.state.rawValue), not held")
            }
            job.state = .queued
        }
        emit([.job(job)])
        return job
    }

    /// Changes the priority of a job that has not finished.
    @discardableResult
    public func setPriority(_ id: String, _ priority: JobPriority, uid: UInt32) throws -> JobRecord {
        let job = try modify(id, uid: uid) { job in
            guard !job.state.isFinal else { throw QueueError.conflict("job \(job.id) is already \(job.state.rawValue)") }
            job.priority = priority.rawValue
        }
        emit([.job(job)])
        return job
    }

    /// Queues a failed or cancelled job again (a fresh attempt count). `clearResult` removes the
    /// old `result.json` after the change is durable.
    @discardableResult
    public func retry(_ id: String, uid: UInt32, clearResult: (JobRecord) -> Void) throws -> JobRecord {
        let job = try modify(id, uid: uid) { job in
            guard job.state == .failed || job.state == .cancelled else {
                throw QueueError.conflict("job \(job.id) is \(job.state.rawValue); only failed or cancelled jobs can be retried")
            }
            job.state = .queued
            job.attempts = 0
            job.error = nil
            job.finished = nil
        }
        clearResult(job)
        emit([.job(job)])
        return job
    }

    public func setPaused(_ value: Bool, uid: UInt32) throws {
        guard policy.mayChangeQueue(caller: uid) else {
            throw QueueError.forbidden("only root or the daemon's user may pause or resume the queue")
        }
        condition.lock()
        if paused != value {
            do { try journal.append([.paused(value)]) } catch { condition.unlock(); throw error }
            paused = value
            condition.broadcast()
        }
        condition.unlock()
        emit([.paused(value)])
    }

    // MARK: recovery

    /// Start-up repair. A job left `running` was interrupted by the daemon's end (a crash, a
    /// `kill -9`, a power cut; the engine ran in the worker process, so that is no fault of the
    /// job's): if its outbox folder already has a `result.json`, that outcome stands (it is
    /// never run twice to completion); else it is queued again, its attempt given back (no
    /// strike). `existingResult` returns the status recorded in a job's `result.json`, if any.
    func recover(existingResult: (JobRecord) -> (JobState, String?)?) throws {
        condition.lock()
        defer { condition.unlock() }
        var changed: [JobRecord] = []
        for var job in jobs.values where !job.state.isFinal {
            if let (state, error) = existingResult(job), state.isFinal {
                job.state = state
                job.error = error
                job.finished = job.finished ?? Date().timeIntervalSince1970
                changed.append(job)
            } else if job.state == .running {
                job.state = .queued
                job.attempts = max(0, job.attempts - 1)
                Log.warning("job \(job.id) was running when the daemon stopped; queued again without a strike (\(job.attempts) so far)")
                changed.append(job)
            }
        }
        try commit(changed)
    }
}
