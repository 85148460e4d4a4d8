@testable import Daemon
import ControlProtocol
import Foundation
import Jobs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The queue in-process: selection order, the journal across reopen, permissions.
final class QueueUnitTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("queue-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func job(_ number: Int, priority: Int = 50, model: String = "a", owner: UInt32 = 1000) throws -> JobRecord {
        var spec = try XCTUnwrap(try JobFileParser().parse(bytes: Array("prompt: \(number)\nwidth: 32\nheight: 32\n".utf8), file: "j").first)
        spec.priority = priority
        let id = JobRecord.id(number: number)
        return JobRecord(id: id, number: number, spec: spec, sourceFile: "j\(number).yaml", owner: owner, submitted: 0,
                         state: .queued, attempts: 0, folder: id, started: nil, finished: nil, error: nil, model: model)
    }

    /// `RLIMIT_FSIZE` as Glibc's `__rlimit_resource` for `getrlimit`/`setrlimit`.
    let RLIMIT_FSIZE_VALUE = __rlimit_resource_t(RLIMIT_FSIZE.rawValue)

    func next(_ queue: JobQueue, loaded: String? = nil) -> String? {
        queue.next(loadedModel: loaded, idle: {}, shouldStop: { false })?.id
    }

    func testLoadedModelIsPreferredOnlyAmongEqualPriorities() throws {
        let queue = try JobQueue(stateDirectory: dir, keepHistory: 10)
        try queue.add([job(1, model: "a"), job(2, model: "b"), job(3, priority: 75, model: "a"), job(4, model: "b")])
        XCTAssertEqual(next(queue, loaded: "b"), "000003", "higher priority wins over the loaded model")
        XCTAssertEqual(next(queue, loaded: "b"), "000002", "loaded model first among equals")
        XCTAssertEqual(next(queue, loaded: "b"), "000004")
        XCTAssertEqual(next(queue, loaded: "b"), "000001")
    }

    func testJournalSurvivesReopenAndCompaction() throws {
        do {
            let queue = try JobQueue(stateDirectory: dir, keepHistory: 10)
            try queue.add((1...700).map { try job($0) })
            // Enough changes to trigger compaction (journal entries > 2 × jobs).
            for round in 0..<3 { for n in 1...700 { try queue.setPriority(String(n), XCTUnwrap(JobPriority(rawValue: 10 + (n + round) % 80)), uid: 0) } }
            try queue.hold("5", uid: 1000)
            try queue.setPaused(true, uid: 0)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("queue.snapshot").path))
        let reopened = try JobQueue(stateDirectory: dir, keepHistory: 10)
        XCTAssertEqual(reopened.all().count, 700)
        XCTAssertEqual(reopened.job("000005")?.state, .held)
        XCTAssertEqual(reopened.job("000123")?.priority, 10 + (123 + 2) % 80)
        XCTAssertTrue(reopened.paused)
        XCTAssertEqual(reopened.nextNumber, 701)
    }

    func testTornJournalLineIsIgnored() throws {
        do {
            let queue = try JobQueue(stateDirectory: dir, keepHistory: 10)
            try queue.add([job(1), job(2)])
        }
        let handle = try FileHandle(forWritingTo: dir.appendingPathComponent("queue.journal"))
        handle.seekToEndOfFile()
        handle.write(Data("{\"put\":{\"_0\":{\"id\":\"0000".utf8))
        try handle.close()
        do {
            let reopened = try JobQueue(stateDirectory: dir, keepHistory: 10)
            XCTAssertEqual(reopened.all().map(\.id), ["000001", "000002"])
            // Appended after the torn tail: must not be glued onto it and lost.
            try reopened.add([job(3)])
            try reopened.setPaused(true, uid: 0)
            try reopened.setPaused(false, uid: 0)
        }
        let again = try JobQueue(stateDirectory: dir, keepHistory: 10)
        XCTAssertEqual(again.all().map(\.id), ["000001", "000002", "000003"])
        XCTAssertFalse(again.paused, "the last acknowledged record (paused: false) holds")
        let lines = try String(contentsOf: dir.appendingPathComponent("queue.journal"), encoding: .utf8).split(separator: "\n")
        for line in lines {
            XCTAssertNoThrow(try JSONDecoder().decode(QueueJournal.Entry.self, from: Data(line.utf8)), String(line))
        }
    }

    /// A write cut short (here by RLIMIT_FSIZE, as a full disk cuts it) leaves no part of the
    /// batch in the journal: the failed add is not acknowledged, and every later one survives.
    func testShortJournalWriteIsCutBackAndNothingAcknowledgedIsLost() throws {
        signal(SIGXFSZ, SIG_IGN)
        var old = rlimit()
        XCTAssertEqual(getrlimit(RLIMIT_FSIZE_VALUE, &old), 0)
        do {
            let queue = try JobQueue(stateDirectory: dir, keepHistory: 10)
            try queue.add([job(1)])
            let journal = dir.appendingPathComponent("queue.journal").path
            let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int)
            var cap = rlimit(rlim_cur: rlim_t(size + 10), rlim_max: old.rlim_max)
            XCTAssertEqual(setrlimit(RLIMIT_FSIZE_VALUE, &cap), 0)
            XCTAssertThrowsError(try queue.add((2...20).map { try job($0) }))
            XCTAssertThrowsError(try queue.setPaused(true, uid: 0))
            XCTAssertEqual(setrlimit(RLIMIT_FSIZE_VALUE, &old), 0)
            XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int, size, "cut back to the last whole record")
            XCTAssertEqual(queue.all().map(\.id), ["000001"], "a change that could not be written is not made")
            XCTAssertFalse(queue.paused)
            try queue.add([job(21)])
        }
        XCTAssertEqual(setrlimit(RLIMIT_FSIZE_VALUE, &old), 0)
        let reopened = try JobQueue(stateDirectory: dir, keepHistory: 10)
        XCTAssertEqual(reopened.all().map(\.id), ["000001", "000021"])
        XCTAssertFalse(reopened.paused)
    }

    /// A journal as written before the daemon's and the protocol's job states became one
    /// ``JobState``: every state still loads by its raw string, and is written back the same.
    func testJournalOfEveryStateLoadsAndIsWrittenBackUnchanged() throws {
        func line(_ n: Int, _ state: String) -> String {
            let id = String(format: "%06d", n)
            return #"{"put":{"_0":{"attempts":1,"folder":"\#(id)","id":"\#(id)","model":"shapes","number":\#(n),"owner":1000,"#
                + #""sourceFile":"j\#(n).yaml","spec":{"count":1,"documentIndex":1,"guidance":7.5,"height":32,"#
                + #""negativePrompt":"","priority":\#(20 + n),"prompt":"job \#(n)","rng":"cpu","sampler":"euler_a","#
                + #""schedule":"default","seed":\#(n),"snapshots":0,"sourceText":"prompt: job \#(n)\n","steps":20,"width":32},"#
                + #""state":"\#(state)","submitted":1700000000}}}"#
        }
        let states = ["queued", "held", "running", "done", "failed", "cancelled"]
        let journal = states.enumerated().map { line($0.offset + 1, $0.element) + "\n" }.joined() + #"{"nextNumber":{"_0":7}}"# + "\n"
        try Data(journal.utf8).write(to: dir.appendingPathComponent("queue.journal"))

        let queue = try JobQueue(stateDirectory: dir, keepHistory: 10)
        for (k, state) in states.enumerated() {
            let job = try XCTUnwrap(queue.job(JobRecord.id(number: k + 1)))
            XCTAssertEqual(job.state.rawValue, state)
            XCTAssertEqual(job.state, JobState(rawValue: state))
            XCTAssertEqual(job.priority, 21 + k)
        }
        XCTAssertEqual(queue.nextNumber, 7)
        try queue.hold("1", uid: 0)
        let written = try String(contentsOf: dir.appendingPathComponent("queue.journal"), encoding: .utf8)
        XCTAssertTrue(written.hasPrefix(journal), "the old lines stay as they were")
        XCTAssertEqual(written.dropFirst(journal.count), Substring(line(1, "held") + "\n"), "a change is written in the same format")
    }

    /// The queue asks the policy it was given: the daemon's user is that policy's uid, not
    /// whatever this process runs as.
    func testQueueChecksEveryChangeWithItsPolicy() throws {
        let daemon: UInt32 = (990...999).first { $0 != getuid() && $0 != geteuid() } ?? 990
        let owner: UInt32 = 4242, stranger: UInt32 = 4343
        let queue = try JobQueue(stateDirectory: dir, keepHistory: 10, policy: ControlPolicy(daemonUID: daemon))
        XCTAssertEqual(queue.policy.daemonUID, daemon)
        try queue.add([job(1, owner: owner)])

        XCTAssertThrowsError(try queue.hold("1", uid: stranger)) {
            XCTAssertEqual($0 as? QueueError, .forbidden("job 000001 belongs to uid 4242"))
        }
        XCTAssertThrowsError(try queue.setPriority("1", .high, uid: stranger))
        XCTAssertThrowsError(try queue.setPaused(true, uid: stranger))
        XCTAssertThrowsError(try queue.setPaused(true, uid: owner)) {
            XCTAssertEqual($0 as? QueueError, .forbidden("only root or the daemon's user may pause or resume the queue"))
        }
        XCTAssertFalse(queue.paused)
        XCTAssertEqual(try queue.hold("1", uid: owner).state, .held, "the owner")
        XCTAssertEqual(try queue.release("1", uid: daemon).state, .queued, "the daemon's user")
        XCTAssertEqual(try queue.setPriority("1", .urgent, uid: 0).priority, 100, "root")
        try queue.setPaused(true, uid: daemon)
        XCTAssertTrue(queue.paused)
        try queue.setPaused(false, uid: 0)
        XCTAssertFalse(queue.paused)
    }

    func testPermissionsAndStateRules() throws {
        let queue = try JobQueue(stateDirectory: dir, keepHistory: 10)
        try queue.add([job(1, owner: 4242)])
        let stranger: UInt32 = 4343
        if getuid() != stranger {
            XCTAssertThrowsError(try queue.hold("1", uid: stranger)) {
                XCTAssertEqual($0 as? QueueError, .forbidden("job 000001 belongs to uid 4242"))
            }
            XCTAssertThrowsError(try queue.setPaused(true, uid: stranger))
        }
        XCTAssertNoThrow(try queue.hold("1", uid: 4242))
        XCTAssertThrowsError(try queue.retry("1", uid: 0, clearResult: { _ in })) {
            XCTAssertEqual($0 as? QueueError, .conflict("job 000001 is held; only failed or cancelled jobs can be retried"))
        }
        XCTAssertThrowsError(try queue.cancel("99", uid: 0)) { XCTAssertEqual($0 as? QueueError, .notFound("no job 99")) }
        XCTAssertEqual(try queue.cancel("1", uid: 0).state, .cancelled)
        XCTAssertEqual(try queue.retry("1", uid: 0, clearResult: { _ in }).state, .queued)
    }
}
