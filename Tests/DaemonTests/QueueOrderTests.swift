import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Jobs run by priority, first come first served within a priority.
final class QueueOrderTests: XCTestCase {
    func testPriorityOrderAndFIFOWithinAPriority() throws {
        let daemon = try DaemonHarness()
        // Dropped before the daemon starts; arrival order is the files' modification time.
        let files = [("a-low", "low"), ("b-high", "high"), ("c-normal", "normal"), ("d-high", "high"),
                     ("e-urgent", "urgent"), ("f-low", "low"), ("g-90", "90"), ("h-normal", "50")]
        for (i, (name, priority)) in files.enumerated() {
            let url = daemon.inbox.appendingPathComponent("\(name).yaml")
            try "prompt: \(name)\npriority: \(priority)\n".write(to: url, atomically: true, encoding: .utf8)
            var times = [timespec(tv_sec: 1_700_000_000 + i, tv_nsec: 0), timespec(tv_sec: 1_700_000_000 + i, tv_nsec: 0)]
            XCTAssertEqual(utimensat(AT_FDCWD, url.path, &times, 0), 0)
        }
        try daemon.start()
        daemon.waitUntil("all 8 jobs finished") { daemon.results.count == 8 }
        XCTAssertEqual(daemon.stop(), 0)
        let sourceByID = Dictionary(uniqueKeysWithValues: daemon.results.map { ($0.result.id, $0.result.source) })
        XCTAssertEqual(daemon.startOrder.compactMap { sourceByID[$0] },
                       ["e-urgent.yaml", "g-90.yaml", "b-high.yaml", "d-high.yaml", "c-normal.yaml", "h-normal.yaml",
                        "a-low.yaml", "f-low.yaml"])
    }

    /// Paused through the control socket, jobs pile up; a priority change and a hold reorder
    /// them; on resume they run in the new order and the held one stays.
    func testControlVerbsReorderTheQueue() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        daemon.waitUntil("socket up") { FileManager.default.fileExists(atPath: daemon.socket.path) }
        XCTAssertEqual(try daemon.control(["pause"]).0, 0)
        for name in ["one", "two", "three", "four"] {
            try daemon.drop("\(name).yaml", "prompt: \(name)\n")
            daemon.waitUntil("\(name) queued") { daemon.log.contains("queued from \(name).yaml") }
        }
        let queue = try daemon.control(["queue"])
        XCTAssertEqual(queue.0, 0)
        let listed = try JSONSerialization.jsonObject(with: Data(queue.1.utf8)) as? [[String: Any]] ?? []
        XCTAssertEqual(listed.compactMap { $0["id"] as? String }, ["000001", "000002", "000003", "000004"])
        XCTAssertEqual(try daemon.control(["priority", "000003", "90"]).0, 0)
        XCTAssertEqual(try daemon.control(["hold", "2"]).0, 0)
        XCTAssertEqual(try daemon.control(["cancel", "000004"]).0, 0)
        XCTAssertEqual(try daemon.control(["resume"]).0, 0)
        daemon.waitUntil("three results") { daemon.results.count == 3 }
        XCTAssertEqual(daemon.startOrder, ["000003", "000001"])
        let status = Dictionary(uniqueKeysWithValues: daemon.results.map { ($0.result.id, $0.result.status) })
        XCTAssertEqual(status["000004"], "cancelled")
        XCTAssertNil(status["000002"], "held job did not run")
        XCTAssertEqual(try daemon.control(["release", "000002"]).0, 0)
        daemon.waitUntil("held job ran after release") { daemon.results.count == 4 }
        // The cancelled job, retried, runs; its old result is kept aside.
        XCTAssertEqual(try daemon.control(["retry", "000004"]).0, 0)
        daemon.waitUntil("retried job ran") { daemon.startOrder.count == 4 && daemon.results.count == 4
            && daemon.results.first { $0.result.id == "000004" }?.result.status != "cancelled" }
        XCTAssertEqual(daemon.startOrder, ["000003", "000001", "000002", "000004"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: daemon.outbox.appendingPathComponent("000004/result-previous.json").path))
        let history = try daemon.control(["history"])
        XCTAssertEqual(history.0, 0)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(history.1.utf8)) as? [Any])?.count, 4)
        XCTAssertEqual(daemon.stop(), 0)
    }
}
