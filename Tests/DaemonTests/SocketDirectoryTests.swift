import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The daemon never changes what it did not create (issue 23, failure 6): a socket directory
/// of another user that anyone may write in is refused (exit 73) and left as it was; an
/// existing directory of its own keeps its mode; one it creates gets 0750.
final class SocketDirectoryTests: XCTestCase {
    func mode(_ path: String) -> mode_t {
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0, path)
        return st.st_mode & 0o7777
    }

    func testWorldWritableDirectoryOfAnotherUserIsRefusedAndLeftAlone() throws {
        let daemon = try DaemonHarness()
        let directory: String
        if geteuid() == 0 {
            // As root, a fresh mode-1777 directory given to nobody (as /tmp is root's).
            directory = daemon.root.appendingPathComponent("shared").path
            XCTAssertEqual(mkdir(directory, 0o755), 0)
            XCTAssertEqual(chmod(directory, 0o1777), 0)
            XCTAssertEqual(chown(directory, 65534, 65534), 0)
        } else {
            directory = "/tmp"
        }
        let before = mode(directory)
        XCTAssertEqual(before & 0o002, 0o002)
        let socket = directory + "/diffusiond-test-\(UUID().uuidString.prefix(8)).sock"
        let (status, log) = try DaemonHarness.runDiffusiond(["--config", daemon.configURL.path, "--socket", socket])
        XCTAssertEqual(status, 73, log)
        XCTAssertTrue(log.contains("<3>cannot start: control socket: \(directory): the control socket's directory belongs to uid "), log)
        XCTAssertTrue(log.contains("and is world-writable (mode \(String(before, radix: 8))): another user could replace the socket"), log)
        XCTAssertEqual(mode(directory), before, "its mode is unchanged")
        XCTAssertFalse(FileManager.default.fileExists(atPath: socket))
        XCTAssertFalse(log.contains("diffusiond ready"), log)
    }

    func testOwnDirectoryKeepsItsModeAndACreatedOneIsPrivate() throws {
        let daemon = try DaemonHarness()
        let run = daemon.root.appendingPathComponent("run").path
        XCTAssertEqual(mkdir(run, 0o755), 0)
        XCTAssertEqual(chmod(run, 0o755), 0)
        try daemon.start()
        XCTAssertEqual(try daemon.control(["status"]).0, 0)
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual(mode(run), 0o755, "an existing directory is not the daemon's to change")
        XCTAssertTrue(daemon.log.contains("\(run): world-accessible (mode 755)"), daemon.log)

        let fresh = try DaemonHarness()
        try fresh.start()
        XCTAssertEqual(fresh.stop(), 0)
        XCTAssertEqual(mode(fresh.root.appendingPathComponent("run").path) & 0o007, 0, "created without world access")
    }
}
