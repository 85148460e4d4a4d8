@testable import Daemon
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Files dropped into a running daemon's inbox: every one ends in a job folder or in
/// rejected/ with its one-line reason, and bad files never stop good ones.
final class IntakeTests: XCTestCase {
    static let corpus = DaemonHarness.repository.appendingPathComponent("Tests/Fixtures/bad-jobs")

    func testBadFilesAreRejectedWithTheirReasonsWhileGoodJobsAreServed() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let expectations = try String(contentsOf: Self.corpus.appendingPathComponent("EXPECTED.tsv"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }
            .map { $0.split(separator: "\t", maxSplits: 1).map(String.init) }
        XCTAssertGreaterThanOrEqual(expectations.count, 25)
        try daemon.drop("good-1.yaml", "prompt: a red circle\nseed: 1\n")
        for pair in expectations {
            try daemon.drop(pair[0], bytes: [UInt8](try Data(contentsOf: Self.corpus.appendingPathComponent(pair[0]))))
        }
        try daemon.drop("good-2.yaml", "prompt: a blue square\nseed: 2\n")
        // Not job files by nature: a symlink, a FIFO, a directory, an oversized file.
        XCTAssertEqual(symlink("/etc/passwd", daemon.inbox.appendingPathComponent("link.yaml").path), 0)
        XCTAssertEqual(mkfifo(daemon.inbox.appendingPathComponent("pipe.yaml").path, 0o644), 0)
        try FileManager.default.createDirectory(at: daemon.inbox.appendingPathComponent("folder.yaml"), withIntermediateDirectories: false)
        try daemon.drop("huge.yaml", "prompt: x\n" + String(repeating: "#", count: 70_000))
        // Symlinks, FIFOs and directories raise only IN_CREATE: the rescan at the next start finds them.
        daemon.stop()
        try daemon.start()

        let total = expectations.count + 4
        daemon.waitUntil("\(total) rejections and 2 finished jobs") {
            daemon.rejectedNames.count == total && daemon.results.count == 2
        }
        for pair in expectations {
            XCTAssertEqual(daemon.rejectionReason(pair[0]), pair[1], pair[0])
        }
        XCTAssertEqual(daemon.rejectionReason("link.yaml"), "link.yaml:0:0: is a symbolic link; drop the file itself, not a link")
        XCTAssertEqual(daemon.rejectionReason("pipe.yaml"), "pipe.yaml:0:0: is a FIFO (named pipe), not a regular file")
        XCTAssertEqual(daemon.rejectionReason("folder.yaml"), "folder.yaml:0:0: is a directory, not a regular file")
        XCTAssertEqual(daemon.rejectionReason("huge.yaml"), "huge.yaml:0:0: file is 70010 bytes, more than the limit of 65536")
        // The symlink was moved, not followed.
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: daemon.outbox.appendingPathComponent("rejected/link.yaml").path), "/etc/passwd")
        XCTAssertEqual(Set(daemon.results.map(\.result.source)), ["good-1.yaml", "good-2.yaml"])
        XCTAssertEqual(daemon.names(daemon.inbox), [], "the inbox is empty")
        XCTAssertEqual(daemon.names(daemon.state.appendingPathComponent("claimed")), [])
        XCTAssertEqual(daemon.stop(), 0)
    }

    func testIgnoredNamesStayInTheInbox() throws {
        let daemon = try DaemonHarness()
        let ignored = [".hidden.yaml", "job.yaml.tmp", "job.yaml.part", ".job.yaml.swp", "job.yaml~"]
        for name in ignored {
            try Data("prompt: x\n".utf8).write(to: daemon.inbox.appendingPathComponent(name))
        }
        try daemon.drop("real.yaml", "prompt: x\n")
        try daemon.start()
        daemon.waitUntil("real.yaml processed") { daemon.results.count == 1 }
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual(Set(daemon.names(daemon.inbox)), Set(ignored))
        XCTAssertEqual(daemon.rejectedNames, [])
    }

    /// A hard link into the inbox raises neither IN_CLOSE_WRITE nor IN_MOVED_TO: only the
    /// periodic rescan finds it.
    func testPeriodicRescanFindsFilesInotifyMissed() throws {
        let daemon = try DaemonHarness(rescanInterval: 1)
        try daemon.start()
        daemon.waitUntil("daemon ready") { daemon.log.contains("diffusiond ready") }
        let outside = daemon.root.appendingPathComponent("outside.yaml")
        try "prompt: linked in\nseed: 5\n".write(to: outside, atomically: true, encoding: .utf8)
        XCTAssertEqual(link(outside.path, daemon.inbox.appendingPathComponent("linked.yaml").path), 0)
        daemon.waitUntil("linked.yaml processed") { daemon.results.map(\.result.source) == ["linked.yaml"] }
        XCTAssertEqual(daemon.stop(), 0)
    }

    func testMultiDocumentFileGivesOneFolderPerJobWithItsOwnText() throws {
        let daemon = try DaemonHarness()
        try daemon.drop("two.yaml", "prompt: first\nname: one\nseed: 7\n---\nprompt: second\ncount: 2\n")
        try daemon.start()
        daemon.waitUntil("two jobs finished") { daemon.results.count == 2 }
        XCTAssertEqual(daemon.stop(), 0)
        let byDocument = Dictionary(uniqueKeysWithValues: daemon.results.map { ($0.result.document, $0) })
        XCTAssertEqual(byDocument[1]?.folder, "000001-one")
        XCTAssertEqual(byDocument[1]?.result.seed, 7)
        XCTAssertEqual(byDocument[2]?.folder, "000002")
        XCTAssertNotNil(byDocument[2]?.result.seed, "a random seed is drawn and recorded")
        XCTAssertEqual(try String(contentsOf: daemon.outbox.appendingPathComponent("000001-one/job.yaml"), encoding: .utf8),
                       "prompt: first\nname: one\nseed: 7\n")
        XCTAssertEqual(try String(contentsOf: daemon.outbox.appendingPathComponent("000002/job.yaml"), encoding: .utf8),
                       "---\nprompt: second\ncount: 2\n")
    }

    /// A file being written in place (not renamed in) is left alone by rescans while it
    /// keeps changing, and taken whole once closed.
    func testFileStillBeingWrittenIsNotTakenHalfWritten() throws {
        let daemon = try DaemonHarness(rescanInterval: 1)
        try daemon.start()
        let path = daemon.inbox.appendingPathComponent("slow.yaml").path
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let parts = ["prompt: \"a slow", " writer", " who", " types", " in", " bursts", " over", " time", " and", " more\"\n", "seed: 3\n"]
        for part in parts {
            XCTAssertEqual(write(fd, part, part.utf8.count), part.utf8.count)
            usleep(250_000)
        }
        close(fd)
        daemon.waitUntil("slow.yaml taken") { daemon.results.count == 1 || !daemon.rejectedNames.isEmpty }
        XCTAssertEqual(daemon.rejectedNames, [])
        XCTAssertEqual(daemon.results.first?.result.prompt, "a slow writer who types in bursts over time and more")
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// A sticky inbox (mode 3770, as systemd/diffusiond.tmpfiles makes it) lets the daemon
    /// claim other users' files only if the daemon owns the inbox or has CAP_FOWNER.
    func testStickyInboxMustBelongToTheDaemon() {
        let sticky = mode_t(0o43770)  // directory, setgid, sticky, rwxrwx---
        XCTAssertNil(InboxPermissions.claimProblem(inbox: "/in", mode: sticky, owner: 900, daemonUID: 900, hasCapFOwner: false))
        XCTAssertNil(InboxPermissions.claimProblem(inbox: "/in", mode: sticky, owner: 0, daemonUID: 900, hasCapFOwner: true))
        XCTAssertNil(InboxPermissions.claimProblem(inbox: "/in", mode: mode_t(0o42770), owner: 0, daemonUID: 900, hasCapFOwner: false))
        XCTAssertEqual(InboxPermissions.claimProblem(inbox: "/in", mode: sticky, owner: 0, daemonUID: 900, hasCapFOwner: false),
                       "the inbox /in has the sticky bit and belongs to uid 0, not to the daemon's uid 900: files dropped by other "
                       + "users cannot be renamed out of it (EPERM), so they stay in the inbox; make the daemon's user own the "
                       + "inbox (chown), or drop the sticky bit")
    }
}
