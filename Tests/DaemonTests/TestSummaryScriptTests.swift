import Foundation
import XCTest

/// `.ci/run`'s closing line (tools/test-summary.sh) counts XCTest's totals in both of the
/// forms XCTest writes, with and without skipped tests, and fails when there are none.
final class TestSummaryScriptTests: XCTestCase {
    func summary(_ log: String) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [DaemonHarness.repository.appendingPathComponent("tools/test-summary.sh").path]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        try p.run()
        input.fileHandleForWriting.write(Data(log.utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text.trimmingCharacters(in: .newlines))
    }

    func testCountsPassedSkippedAndFailed() throws {
        let suite = "Test Suite 'Selected tests' passed at 2026-12-03\n\t Executed 3 tests, with 0 failures (0 unexpected) in 1.0 (1.0) seconds\n"
        XCTAssertEqual(try summary(suite + "Test Suite 'All tests' failed at 2026-12-03 16:00:00.000\n"
                                   + "\t Executed 412 tests, with 5 tests skipped and 2 failures (1 unexpected) in 181.2 (181.2) seconds\n").1,
                       "tests: 405 passed, 5 skipped, 2 failed")
        XCTAssertEqual(try summary("Test Suite 'All tests' passed at 2026-12-03 16:00:00.000\n"
                                   + "\t Executed 1 test, with 1 test skipped and 0 failures (0 unexpected) in 0.1 (0.1) seconds\n").1,
                       "tests: 0 passed, 1 skipped, 0 failed")
        XCTAssertEqual(try summary(suite + "Test Suite 'All tests' passed at 2026-12-03 16:00:00.000\n"
                                   + "\t Executed 410 tests, with 0 failures (0 unexpected) in 181.2 (181.2) seconds\n").1,
                       "tests: 410 passed, 0 skipped, 0 failed")
        let (status, text) = try summary("error: build failed\n")
        XCTAssertEqual(status, 1)
        XCTAssertEqual(text, "tests: no XCTest summary found (the run did not finish)")
    }
}
