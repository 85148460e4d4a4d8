import Foundation
import ControlProtocol
import Daemon

/// A small in-memory queue implementing ``ControlHandler`` for driving the real control
/// server and client in tests before (and independently of) the daemon's queue.
/// Order: running first, then by priority (high first), FIFO within a priority.
final class InTestQueue: ControlHandler, @unchecked Sendable {
    let events = ControlEventHub()
    private let lock = NSLock()
    private var jobs: [JobInfo] = []
    private(set) var paused = false
    /// Inbox reported by `status` (where `diffusionctl submit` copies to).
    var inbox = "/spool/inbox"
    private(set) var log: [String] = []
    private var sequence = 0

    @discardableResult
    func add(name: String, priority: Int = 50, owner: UInt32 = 0, state: JobState = .queued, steps: Int = 10) -> JobInfo {
        lock.lock()
        defer { lock.unlock() }
        sequence += 1
        let job = JobInfo(id: String(format: "j%04d", sequence), name: name, state: state, priority: priority,
                            owner: JobInfo.Owner(uid: owner, user: AccountNames.userName(owner)), model: "shapes",
                            submitted: Date(timeIntervalSince1970: 1_700_000_000 + Double(sequence)),
                            prompt: "prompt of \(name)", steps: steps, count: 1)
        jobs.append(job)
        return job
    }

    private func ordered(_ list: [JobInfo]) -> [JobInfo] {
        list.enumerated().sorted { a, b in
            let ra = a.element.state == .running ? 1 : 0, rb = b.element.state == .running ? 1 : 0
            if ra != rb { return ra > rb }
            if a.element.priority != b.element.priority { return a.element.priority > b.element.priority }
            return a.offset < b.offset
        }.map(\.element)
    }

    private func modify(_ id: String, _ body: (inout JobInfo) throws -> Void) throws -> JobInfo {
        lock.lock()
        defer { lock.unlock() }
        guard let index = jobs.firstIndex(where: { $0.id == id }) else { throw ControlFailure.notFound(job: id) }
        try body(&jobs[index])
        return jobs[index]
    }

    func status() throws -> DaemonStatus {
        lock.lock()
        defer { lock.unlock() }
        var counts: [String: Int] = [:]
        for job in jobs { counts[job.state.rawValue, default: 0] += 1 }
        return DaemonStatus(version: "test", pid: getpid(), uid: geteuid(), paused: paused,
                            running: jobs.first { $0.state == .running }, counts: counts,
                            inbox: inbox, outbox: "/spool/outbox", uptime: 1, loadedModel: nil)
    }

    func list(all: Bool) throws -> [JobInfo] {
        lock.lock()
        defer { lock.unlock() }
        return ordered(jobs.filter { all || !$0.state.isFinal })
    }

    func show(id: String) throws -> JobInfo { try modify(id) { _ in } }

    func cancel(id: String, caller: UInt32) throws -> JobInfo {
        try modify(id) { job in
            guard !job.state.isFinal else { throw ControlFailure.conflict("job \(id) is already \(job.state.rawValue)") }
            job.state = .cancelled
            job.error = "cancelled by uid \(caller)"
        }
    }

    func hold(id: String, caller: UInt32) throws -> JobInfo {
        try modify(id) { job in
            guard job.state == .queued else { throw ControlFailure.conflict("job \(id) is \(job.state.rawValue), not queued") }
            job.state = .held
        }
    }

    func release(id: String, caller: UInt32) throws -> JobInfo {
        try modify(id) { job in
            guard job.state == .held else { throw ControlFailure.conflict("job \(id) is \(job.state.rawValue), not held") }
            job.state = .queued
        }
    }

    func setPriority(id: String, priority: JobPriority, caller: UInt32) throws -> JobInfo {
        try modify(id) { job in
            guard job.state == .queued || job.state == .held else {
                throw ControlFailure.conflict("job \(id) is \(job.state.rawValue)")
            }
            job.priority = priority.rawValue
        }
    }

    func retry(id: String, caller: UInt32) throws -> JobInfo {
        try modify(id) { job in
            guard job.state == .failed || job.state == .cancelled else {
                throw ControlFailure.conflict("job \(id) is \(job.state.rawValue); only failed or cancelled jobs can be retried")
            }
            job.state = .queued
            job.error = nil
        }
    }

    func pause(caller: UInt32) throws {
        lock.lock()
        paused = true
        log.append("pause \(caller)")
        lock.unlock()
    }

    func resume(caller: UInt32) throws {
        lock.lock()
        paused = false
        log.append("resume \(caller)")
        lock.unlock()
    }

    func history(limit: Int?) throws -> [JobInfo] {
        lock.lock()
        defer { lock.unlock() }
        let finished = jobs.filter(\.state.isFinal).reversed()
        return Array(finished.prefix(limit ?? Int.max))
    }

    func models() throws -> [ModelInfo] {
        [ModelInfo(name: "shapes", path: "/usr/share/diffusiond/models/shapes", isDefault: true, loaded: false),
         ModelInfo(name: "sd15", path: "/srv/models/sd15", isDefault: false, loaded: false)]
    }
}
