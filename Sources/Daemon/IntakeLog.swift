import ControlProtocol
import Foundation
import Jobs
#if canImport(Glibc)
import Glibc
#endif

/// What the intake made of the files it took since the daemon started, newest last, for the
/// `intake` verb (`diffusionctl submit` waits on it). Kept in memory and bounded: the queue
/// (jobs) and `outbox/rejected/` (rejections) are the durable records. Thread-safe: the
/// intake thread records, control connections read, under one lock.
final class IntakeLog: @unchecked Sendable {
    /// Outcomes kept; older ones are dropped.
    static let capacity = 1024
    private let lock = NSLock()
    private var outcomes: [IntakeOutcome] = []
    private var last = 0

    /// Sequence number of the latest outcome (0: none yet).
    var sequence: Int {
        lock.lock()
        defer { lock.unlock() }
        return last
    }

    /// Outcomes with a sequence number above `since` (all kept ones when nil), oldest first.
    func outcomes(since: Int?) -> [IntakeOutcome] {
        lock.lock()
        defer { lock.unlock() }
        guard let since else { return outcomes }
        return outcomes.filter { $0.sequence > since }
    }

    /// Records that the inbox file `file`, claimed at `claim` (not yet removed), became `jobs`.
    func accepted(file: String, claim: URL, jobs: [JobRecord]) {
        let inode = IntakeLog.inode(of: claim)
        let made = jobs.map { IntakeOutcome.Job(id: $0.id, name: $0.displayName, document: $0.spec.documentIndex) }
        append { IntakeOutcome(sequence: $0, file: file, inode: inode, time: Date(), jobs: made) }
    }

    /// Records that the inbox file `file` was rejected and now lies at `path` (`rejected/…`).
    func rejected(file: String, path: URL, reason: String) {
        let inode = IntakeLog.inode(of: path)
        let rejection = RejectionInfo(file: path.lastPathComponent, path: path.path, reason: SourceError.oneLine(reason), time: Date())
        append { IntakeOutcome(sequence: $0, file: file, inode: inode, time: Date(), rejection: rejection) }
    }

    private func append(_ make: (Int) -> IntakeOutcome) {
        lock.lock()
        defer { lock.unlock() }
        last += 1
        outcomes.append(make(last))
        if outcomes.count > IntakeLog.capacity { outcomes.removeFirst(outcomes.count - IntakeLog.capacity) }
    }

    /// Inode number of the file at `url` (not following a link), if it exists.
    static func inode(of url: URL) -> UInt64? {
        var st = stat()
        return lstat(url.path, &st) == 0 ? UInt64(st.st_ino) : nil
    }
}
