import Foundation
import Jobs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `AtomicFile`'s temporary names and which leftovers may go: a shared outbox has no locks,
/// so a temporary file is removed only when its writer cannot be writing it any more.
final class AtomicFileTemporaryTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("atomic-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testTemporaryNamesSayHostAndProcess() throws {
        let writer = try XCTUnwrap(AtomicFile.temporaryWriter(".image-003.png.tmp-node17.cluster-4242-9"))
        XCTAssertEqual(writer.host, "node17.cluster")
        XCTAssertEqual(writer.pid, 4242)
        XCTAssertNil(AtomicFile.temporaryWriter(".image-003.png.tmp-4242-9"), "the old form names no host")
        XCTAssertNil(AtomicFile.temporaryWriter("image-003.png"))
        XCTAssertFalse(AtomicFile.hostName.isEmpty)
        XCTAssertFalse(AtomicFile.hostName.contains("-"), "a host name in a temporary name has no dash")
        // A finished write leaves no temporary behind.
        try AtomicFile.write("x", to: dir.appendingPathComponent("a.txt"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["a.txt"])
    }

    func testOnlyDeadOrOldWritersLeftoversAreAbandoned() throws {
        // A process of this host that has exited.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let host = AtomicFile.hostName
        let dead = ".a.png.tmp-\(host)-\(child.processIdentifier)-1"
        let alive = ".b.png.tmp-\(host)-\(getpid())-1"
        let otherNew = ".c.png.tmp-elsewhere-\(getpid())-1"
        let otherOld = ".d.png.tmp-elsewhere-\(getpid())-2"
        for name in [dead, alive, otherNew, otherOld] {
            XCTAssertTrue(FileManager.default.createFile(atPath: dir.appendingPathComponent(name).path, contents: Data([1])))
        }
        // Two hours ago.
        var times = [timespec(tv_sec: time(nil) - 7200, tv_nsec: 0), timespec(tv_sec: time(nil) - 7200, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, dir.appendingPathComponent(otherOld).path, &times, 0), 0)
        XCTAssertTrue(AtomicFile.isAbandoned(dead, in: dir), "this host, process gone")
        XCTAssertFalse(AtomicFile.isAbandoned(alive, in: dir), "this host, process alive")
        XCTAssertFalse(AtomicFile.isAbandoned(otherNew, in: dir), "another host, recent: may be writing")
        XCTAssertTrue(AtomicFile.isAbandoned(otherOld, in: dir), "another host, older than an hour")
        XCTAssertFalse(AtomicFile.isAbandoned("a.png", in: dir), "not a temporary name")
    }
}
