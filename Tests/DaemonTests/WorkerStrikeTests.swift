@testable import Daemon
import ControlProtocol
import Foundation
import Jobs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Which worker deaths are strikes, and what a strike does to a job, in-process.
final class WorkerStrikeTests: XCTestCase {
    func testWaitStatusesAreDecodedAndOnlyFaultsStrike() {
        XCTAssertEqual(WorkerExit(status: 0), .exited(0))
        XCTAssertEqual(WorkerExit(status: 3 << 8), .exited(3))
        XCTAssertEqual(WorkerExit(status: SIGSEGV), .signaled(SIGSEGV))
        XCTAssertEqual(WorkerExit(status: SIGSEGV | 0x80), .signaled(SIGSEGV), "a core dump is still the signal")

        XCTAssertNil(WorkerExit.exited(0).strikeReason(killedByDaemon: false))
        XCTAssertEqual(WorkerExit.exited(74).strikeReason(killedByDaemon: false), "exit status 74")
        for (signal, name) in [(SIGSEGV, "SIGSEGV"), (SIGBUS, "SIGBUS"), (SIGILL, "SIGILL"), (SIGABRT, "SIGABRT"), (SIGFPE, "SIGFPE")] {
            XCTAssertEqual(WorkerExit.signaled(signal).strikeReason(killedByDaemon: false), name)
            XCTAssertEqual(WorkerExit.signaled(signal).strikeReason(killedByDaemon: true), name, "a fault is a fault")
        }
        XCTAssertEqual(WorkerExit.signaled(SIGKILL).strikeReason(killedByDaemon: false), "SIGKILL (out of memory, or killed from outside)")
        XCTAssertNil(WorkerExit.signaled(SIGKILL).strikeReason(killedByDaemon: true), "the daemon's own SIGKILL strikes nothing")
        XCTAssertNil(WorkerExit.signaled(SIGTERM).strikeReason(killedByDaemon: false))
        XCTAssertNil(WorkerExit.signaled(SIGINT).strikeReason(killedByDaemon: false))
        XCTAssertEqual(WorkerExit.name(64), "signal 64")
    }

    func testFaultSwitchReadsTheSignalFromThePrompt() {
        XCTAssertEqual(WorkerMain.testFault(in: "a cat test-fault:SIGSEGV"), SIGSEGV)
        XCTAssertEqual(WorkerMain.testFault(in: "test-fault:SIGABRT here"), SIGABRT)
        XCTAssertNil(WorkerMain.testFault(in: "a cat"))
    }

    /// A strike keeps the run's attempt and queues the job again; the third fails it with a
    /// result naming the signal, journaled.
    func testThirdStrikeFailsTheJobNamingTheSignal() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strike-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let queue = try JobQueue(stateDirectory: dir, keepHistory: 10)
        var written: [JobRecord] = []
        queue.writeTerminalResult = { written.append($0) }
        let spec = try XCTUnwrap(try JobFileParser().parse(bytes: Array("prompt: x\nwidth: 32\nheight: 32\n".utf8), file: "j").first)
        try queue.add([JobRecord(id: "000001", number: 1, spec: spec, sourceFile: "j.yaml", owner: getuid(), submitted: 0,
                                 state: .queued, attempts: 0, folder: "000001", started: nil, finished: nil, error: nil, model: "a")])
        for strike in 1...3 {
            let job = try XCTUnwrap(queue.next(loadedModel: nil, idle: {}, shouldStop: { false }))
            XCTAssertEqual(job.attempts, strike)
            try queue.strike(job.id, reason: "SIGBUS", maxStrikes: 3)
        }
        let failed = try XCTUnwrap(try JobQueue(stateDirectory: dir, keepHistory: 10).job("000001"))
        XCTAssertEqual(failed.state, .failed)
        XCTAssertEqual(failed.attempts, 3)
        XCTAssertEqual(failed.error, "the worker process died of SIGBUS 3 times while running this job; not retried")
        XCTAssertEqual(written.map(\.state), [.failed])
        XCTAssertNil(queue.next(loadedModel: nil, idle: {}, shouldStop: { true }))
    }
}
