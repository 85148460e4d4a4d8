import ControlProtocol
import Daemon
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The spool on a real, small tmpfs that fills up while files are taken in and while images
/// are written (issue 23, failure 1): nothing is lost, the journal stays readable, claims
/// are finished once space returns (without a restart), and a job whose image could not be
/// written fails with that reason (retryable), never "interrupted by shutdown".
final class FullDiskTests: XCTestCase {
    /// A daemon whose spool folder is a tmpfs of `megabytes`; unmounted when the test ends.
    func makeDaemon(megabytes: Int) throws -> DaemonHarness {
        guard geteuid() == 0 else {
            throw XCTSkip("mounting a tmpfs needs root (CI runs the tests as root)")
        }
        let daemon = try DaemonHarness(extraConfig: "limits:\n  max_count: 64\n")
        let spool = daemon.inbox.deletingLastPathComponent()
        let status = try DaemonHarness.runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0755", "tmpfs", spool.path])
        guard status == 0 else { throw HarnessError("mount -t tmpfs on \(spool.path) failed (status \(status))") }
        addTeardownBlock {
            if daemon.process != nil { daemon.stop(SIGKILL) }
            _ = try? DaemonHarness.runTool("/bin/umount", ["-l", spool.path])
        }
        try FileManager.default.createDirectory(at: daemon.inbox, withIntermediateDirectories: true)
        return daemon
    }

    /// Fills the file system holding `folder` to the last byte; returns the filler's path.
    @discardableResult
    func fill(_ folder: URL) throws -> String {
        let path = folder.appendingPathComponent(".filler").path
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else { throw HarnessError("cannot create \(path)") }
        defer { close(fd) }
        var fs = statvfs()
        guard statvfs(folder.path, &fs) == 0 else { throw HarnessError("statvfs \(folder.path)") }
        let free = Int(fs.f_bavail) * Int(fs.f_frsize)
        if free > 0 { _ = posix_fallocate(fd, 0, off_t(free)) }
        let chunk = [UInt8](repeating: 0x55, count: 512)
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        var byte: UInt8 = 0
        while write(fd, &byte, 1) > 0 {}
        XCTAssertEqual(errno, ENOSPC, "the filler stopped at a full disk")
        return path
    }

    /// Every line of the journal is a whole record (no torn tail, nothing glued together).
    func assertJournalReadable(_ daemon: DaemonHarness, file: StaticString = #filePath, line: UInt = #line) throws {
        let data = try Data(contentsOf: daemon.state.appendingPathComponent("queue.journal"))
        XCTAssertTrue(data.isEmpty || data.last == UInt8(ascii: "\n"), "the journal ends in a whole line", file: file, line: line)
        for record in data.split(separator: UInt8(ascii: "\n")) {
            XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(record)), String(decoding: record, as: UTF8.self),
                            file: file, line: line)
        }
    }

    func jobs(_ daemon: DaemonHarness) throws -> [[String: Any]] {
        let (status, listing) = try daemon.control(["queue", "--all"])
        XCTAssertEqual(status, 0, listing)
        return try JSONSerialization.jsonObject(with: Data(listing.utf8)) as? [[String: Any]] ?? []
    }

    func testDiskFilledDuringIntakeLosesNothingAndClaimsFinishOnceSpaceReturns() throws {
        let daemon = try makeDaemon(megabytes: 2)
        try daemon.start()
        XCTAssertEqual(try daemon.control(["pause"]).0, 0)
        // Written before the disk fills (dot names are left alone), moved in once it is full.
        let good = (1...40).map { "job-\($0).yaml" }, bad = ["bad-1.yaml", "bad-2.yaml"]
        for name in good { try Data("prompt: job \(name) \(String(repeating: "x", count: 600))\n".utf8).write(to: daemon.inbox.appendingPathComponent(".\(name)")) }
        for name in bad { try Data("prompt: x\nsteps: many\n".utf8).write(to: daemon.inbox.appendingPathComponent(".\(name)")) }
        let filler = try fill(daemon.inbox)
        for name in good + bad {
            XCTAssertEqual(rename(daemon.inbox.appendingPathComponent(".\(name)").path, daemon.inbox.appendingPathComponent(name).path), 0)
        }
        daemon.waitUntil("the journal refuses the claims") { daemon.log.contains("cannot journal") }
        XCTAssertEqual(daemon.names(daemon.inbox), [".filler"], "every file is claimed")
        XCTAssertFalse(daemon.names(daemon.state.appendingPathComponent("claimed")).isEmpty)
        try assertJournalReadable(daemon)

        XCTAssertEqual(unlink(filler), 0)
        daemon.waitUntil("the claims are finished without a restart") {
            daemon.names(daemon.state.appendingPathComponent("claimed")).isEmpty && daemon.rejectedNames.count == bad.count
        }
        XCTAssertEqual(try jobs(daemon).count, good.count)
        XCTAssertEqual(try daemon.control(["resume"]).0, 0)
        daemon.waitUntil("every job ran") { daemon.results.count == good.count }
        XCTAssertEqual(daemon.stop(), 0)
        try assertJournalReadable(daemon)

        // The last record (resume) holds after a restart, and every file is in one place.
        try daemon.start()
        let (_, statusText) = try daemon.control(["status"])
        let status = try JSONSerialization.jsonObject(with: Data(statusText.utf8)) as? [String: Any]
        XCTAssertEqual(status?["paused"] as? Bool, false, statusText)
        let listed = try jobs(daemon)
        XCTAssertEqual(listed.count, good.count)
        XCTAssertEqual(Set(listed.compactMap { $0["state"] as? String }), ["done"])
        XCTAssertEqual(Set(daemon.results.map(\.result.source)), Set(good))
        XCTAssertEqual(Set(daemon.rejectedNames), Set(bad))
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertFalse(daemon.log.contains("interrupted by shutdown"), daemon.log)
    }

    func testDiskFilledWhileImagesAreWrittenFailsTheJobWithTheReasonAndLaterJobsRun() throws {
        let daemon = try makeDaemon(megabytes: 4)
        try daemon.start()
        try daemon.drop("big.yaml", "prompt: a long job\ncount: 16\nwidth: 64\nheight: 64\nsteps: 6\nseed: 1\n")
        let firstImage = daemon.outbox.appendingPathComponent("000001/image-001.png")
        daemon.waitUntil("the first image") { FileManager.default.fileExists(atPath: firstImage.path) }
        let filler = try fill(daemon.inbox)
        // Its failure is journaled at once if the journal's last page has room, else once
        // space returns (the worker tries again; the queue never runs ahead of the disk).
        daemon.waitUntil("the job fails") {
            daemon.log.contains("job 000001 failed: ") || daemon.log.contains("job 000001: cannot record its outcome")
        }
        try assertJournalReadable(daemon)
        XCTAssertEqual(unlink(filler), 0)
        try daemon.drop("next.yaml", "prompt: the next job\nseed: 2\n")
        daemon.waitUntil("both jobs finished") { daemon.results.count == 2 }

        let results = Dictionary(uniqueKeysWithValues: daemon.results.map { ($0.result.source, $0.result) })
        let big = try XCTUnwrap(results["big.yaml"])
        XCTAssertEqual(big.status, "failed")
        XCTAssertTrue(big.error?.hasPrefix("cannot write 000001/image-") == true, big.error ?? "no error")
        XCTAssertTrue(big.error?.hasSuffix(".png: No space left on device") == true, big.error ?? "no error")
        XCTAssertEqual(results["next.yaml"]?.status, "done")
        XCTAssertFalse(daemon.log.contains("interrupted by shutdown"), daemon.log)

        // Failed, so retryable: it runs again and keeps the images written before the disk filled.
        let kept = daemon.names(daemon.outbox.appendingPathComponent("000001")).filter { $0.hasSuffix(".png") }.count
        XCTAssertGreaterThan(kept, 0)
        XCTAssertEqual(try daemon.control(["retry", "000001"]).0, 0)
        daemon.waitUntil("the retried job is done") {
            daemon.results.first { $0.folder == "000001" }?.result.status == "done"
        }
        XCTAssertEqual(daemon.names(daemon.outbox.appendingPathComponent("000001")).filter { $0.hasSuffix(".png") }.count, 16)
        XCTAssertEqual(daemon.stop(), 0)
        try assertJournalReadable(daemon)
        try daemon.start()
        XCTAssertEqual(Set(try jobs(daemon).compactMap { $0["state"] as? String }), ["done"])
        XCTAssertEqual(daemon.stop(), 0)
    }
}
