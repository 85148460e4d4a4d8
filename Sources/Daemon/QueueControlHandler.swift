import ControlProtocol
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Serves the control socket's verbs (`ControlHandler`, Sources/Daemon/Control) from the
/// daemon's `JobQueue`, and republishes queue events to `watch` clients. Thread-safe: every
/// call goes through the queue's lock.
final class QueueControlHandler: ControlHandler, @unchecked Sendable {
    let queue: JobQueue
    let outbox: Outbox
    let settings: SettingsBox
    let events = ControlEventHub()
    /// Name of the model the worker holds loaded.
    let loadedModel: () -> String?
    /// The intake's record of the files it took (`intake`, `status`).
    let intakeLog: IntakeLog
    private let startTime = Date()
    private var observer = 0

    init(queue: JobQueue, outbox: Outbox, settings: SettingsBox, intakeLog: IntakeLog, loadedModel: @escaping () -> String?) {
        self.queue = queue
        self.outbox = outbox
        self.settings = settings
        self.intakeLog = intakeLog
        self.loadedModel = loadedModel
        observer = queue.addObserver { [weak self] event in self?.publish(event) }
    }

    deinit { queue.removeObserver(observer) }

    private func publish(_ event: QueueEvent) {
        switch event {
        case .job(let job):
            let info = self.info(job)
            let kind: ControlEvent.Kind = job.state == .running ? .jobStarted : job.state.isFinal ? .jobFinished : .queueChanged
            events.publish(ControlEvent(kind: kind, job: info))
        case .progress(let p):
            let progress = QueueControlHandler.progress(p)
            var published = [ControlEvent(kind: .step, id: p.id, progress: progress)]
            if let path = p.preview { published.append(ControlEvent(kind: .preview, id: p.id, progress: progress, preview: path)) }
            events.publish(published)
        case .paused:
            events.publish(ControlEvent(kind: .queueChanged))
        }
    }

    static func progress(_ p: JobProgress) -> JobInfo.Progress {
        let elapsed = Date().timeIntervalSince1970 - p.started
        let done = p.image * p.steps + p.step
        return JobInfo.Progress(step: p.step, total: p.steps, image: p.image, count: p.images,
                                rate: elapsed > 0 && done > 0 ? Double(done) / elapsed : nil)
    }

    func info(_ job: JobRecord) -> JobInfo {
        let progress = job.state == .running ? queue.progress().flatMap { $0.id == job.id ? QueueControlHandler.progress($0) : nil } : nil
        var info = JobInfo(id: job.id, name: job.displayName, state: job.state, priority: job.priority,
                       owner: .init(uid: job.owner, user: AccountNames.userName(job.owner)), model: job.model,
                       submitted: Date(timeIntervalSince1970: job.submitted),
                       started: job.started.map { Date(timeIntervalSince1970: $0) },
                       finished: job.state.isFinal ? job.finished.map { Date(timeIntervalSince1970: $0) } : nil,
                       prompt: job.spec.prompt, steps: job.spec.stepsWithRestarts, count: job.spec.count, progress: progress,
                       attempts: job.attempts, error: job.error, outbox: outbox.folder(job).path,
                       parameters: job.spec.parameters(model: job.model), source: job.sourceFile,
                       document: job.spec.documentIndex)
        info.cancelRequested = job.state == .running && queue.isCancelRequested(job.id) ? true : nil
        return info
    }

    /// ``info(_:)`` with the job's images: those its `result.json` lists once it finished,
    /// else the complete images in its folder so far.
    func detailedInfo(_ job: JobRecord) -> JobInfo {
        var detail = info(job)
        let folder = outbox.folder(job)
        if job.state.isFinal, let result = outbox.result(job) {
            detail.images = result.images.map {
                JobInfo.Image(path: folder.appendingPathComponent($0.file).path, seed: $0.seed, seconds: $0.seconds)
            }
            detail.seconds = result.seconds
        } else {
            detail.images = (0..<job.spec.count).compactMap { index in
                let url = outbox.imageURL(job, index)
                guard FileManager.default.fileExists(atPath: url.path) else { return nil }
                return JobInfo.Image(path: url.path, seed: (job.spec.seed ?? 0) &+ UInt64(index))
            }
        }
        return detail
    }

    /// The job with id `key`, else the one job whose name is `key`.
    private func record(_ key: String) throws -> JobRecord {
        if let job = queue.job(key) { return job }
        let named = queue.all().filter { $0.displayName == key }
        guard let first = named.first else { throw ControlFailure(.notFound, "no job with id or name '\(key)'") }
        guard named.count == 1 else {
            throw ControlFailure.badRequest("name '\(key)' is ambiguous: jobs \(named.map(\.id).sorted().joined(separator: ", ")) "
                + "have it; give one of their ids")
        }
        return first
    }

    private func mapped<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as QueueError {
            switch error {
            case .notFound(let m): throw ControlFailure(.notFound, m)
            case .conflict(let m): throw ControlFailure(.conflict, m)
            case .forbidden(let m): throw ControlFailure(.forbidden, m)
            }
        }
    }

    func status() throws -> DaemonStatus {
        let all = queue.all()
        var counts = Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, 0) })
        for job in all { counts[job.state.rawValue, default: 0] += 1 }
        let config = settings.config
        return DaemonStatus(version: "diffusiond \(DiffusiondCommand.version)", pid: getpid(), uid: queue.policy.daemonUID,
                            paused: queue.paused, running: all.first { $0.state == .running }.map(info), counts: counts,
                            inbox: config.inbox.path, outbox: config.outbox.path,
                            uptime: Date().timeIntervalSince(startTime), loadedModel: loadedModel(),
                            socket: config.socket.path, rejected: outbox.rejections().count,
                            intakeSequence: intakeLog.sequence)
    }

    func list(all: Bool) throws -> [JobInfo] {
        queue.all().filter { all || !$0.state.isFinal }.map(info)
    }

    func show(id: String) throws -> JobInfo {
        detailedInfo(try record(id))
    }

    func cancel(id: String, caller: UInt32) throws -> JobInfo {
        let job = try mapped { try queue.cancel(id, uid: caller) }
        Log.notice("job \(job.id): cancel requested by uid \(caller)")
        return info(queue.job(job.id) ?? job)
    }

    func hold(id: String, caller: UInt32) throws -> JobInfo {
        info(try mapped { try queue.hold(id, uid: caller) })
    }

    func release(id: String, caller: UInt32) throws -> JobInfo {
        info(try mapped { try queue.release(id, uid: caller) })
    }

    func setPriority(id: String, priority: JobPriority, caller: UInt32) throws -> JobInfo {
        info(try mapped { try queue.setPriority(id, priority, uid: caller) })
    }

    func retry(id: String, caller: UInt32) throws -> JobInfo {
        let job = try mapped { try queue.retry(id, uid: caller, clearResult: outbox.retireResult) }
        Log.notice("job \(job.id): queued again by uid \(caller)")
        return info(job)
    }

    func pause(caller: UInt32) throws {
        try mapped { try queue.setPaused(true, uid: caller) }
        Log.notice("queue paused by uid \(caller)")
    }

    func resume(caller: UInt32) throws {
        try mapped { try queue.setPaused(false, uid: caller) }
        Log.notice("queue resumed by uid \(caller)")
    }

    func history(limit: Int?) throws -> [JobInfo] {
        let finished = queue.all().filter { $0.state.isFinal }
        return Array(finished.prefix(limit ?? finished.count)).map(info)
    }

    func rejections(limit: Int?) throws -> [RejectionInfo] {
        Array(outbox.rejections().prefix(limit ?? Int.max))
    }

    func intake(since: Int?) throws -> [IntakeOutcome] {
        intakeLog.outcomes(since: since)
    }

    func models() throws -> [ModelInfo] {
        let config = settings.config
        let loaded = loadedModel()
        return config.models.sorted { $0.key < $1.key }.map {
            ModelInfo(name: $0.key, path: $0.value.path.path, isDefault: $0.key == config.defaultModel, loaded: $0.key == loaded)
        }
    }
}
