#if canImport(Glibc)
import Glibc
#endif
import XCTest
import Foundation
import ControlProtocol

/// The built `diffusionctl` as another uid (setpriv to `nobody`) against the real server:
/// read verbs allowed, changes to someone else's job and queue-wide changes refused with
/// 77, and a socket the user cannot reach refused with 77 naming the group to join.
final class PermissionTests: XCTestCase {
    var fixture: ServerFixture?
    let nobody: UInt32 = 65534

    override func setUpWithError() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to run a client as another uid") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { throw XCTSkip("setpriv(1) missing") }
        fixture = try ServerFixture()
    }

    override func tearDown() { fixture?.tearDown() }

    /// Gives the group `nobody` (gid 65534) access to the socket and its directory, as
    /// membership in the service group would.
    private func grantGroup(_ f: ServerFixture) {
        XCTAssertEqual(chmod(f.directory, 0o755), 0)
        XCTAssertEqual(chown(f.directory + "/run", 0, nobody), 0)
        XCTAssertEqual(chown(f.socketPath, 0, nobody), 0)
    }

    func testAnotherUserMayReadButNotChangeOthersJobsOrTheQueue() throws {
        let f = try XCTUnwrap(fixture)
        let ctl = try ExecutableRunner.executable("diffusionctl")
        grantGroup(f)
        let rootsJob = f.queue.add(name: "roots", owner: 0)
        let ownJob = f.queue.add(name: "mine", owner: nobody)

        let (readStatus, readOut, readErr) = try ExecutableRunner.run(ctl, ["--socket", f.socketPath, "queue", "--json"], asUID: nobody)
        XCTAssertEqual(readStatus, 0, readErr)
        XCTAssertTrue(readOut.contains(rootsJob.id))

        let (cancelStatus, _, cancelErr) = try ExecutableRunner.run(ctl, ["--socket", f.socketPath, "cancel", rootsJob.id], asUID: nobody)
        XCTAssertEqual(cancelStatus, 77, cancelErr)
        XCTAssertTrue(cancelErr.contains("owner"), cancelErr)
        XCTAssertEqual(try f.queue.show(id: rootsJob.id).state, .queued, "the refused cancel changed nothing")

        let (pauseStatus, _, pauseErr) = try ExecutableRunner.run(ctl, ["--socket", f.socketPath, "pause"], asUID: nobody)
        XCTAssertEqual(pauseStatus, 77, pauseErr)
        XCTAssertFalse(f.queue.paused)

        let (ownStatus, _, ownErr) = try ExecutableRunner.run(ctl, ["--socket", f.socketPath, "hold", ownJob.id], asUID: nobody)
        XCTAssertEqual(ownStatus, 0, "the owner may change their own job: \(ownErr)")
        XCTAssertEqual(try f.queue.show(id: ownJob.id).state, .held)
    }

    func testUnreachableSocketExits77NamingTheGroup() throws {
        let f = try XCTUnwrap(fixture)
        let ctl = try ExecutableRunner.executable("diffusionctl")
        // Directory reachable, socket mode 0660 root:root: nobody is not in the group.
        XCTAssertEqual(chmod(f.directory, 0o755), 0)
        XCTAssertEqual(chmod(f.directory + "/run", 0o755), 0)
        let (status, _, err) = try ExecutableRunner.run(ctl, ["--socket", f.socketPath, "status"], asUID: nobody)
        XCTAssertEqual(status, 77, err)
        XCTAssertTrue(err.contains("permission denied") && err.contains("'root'"), err)
    }

    func testDaemonDownExits69() throws {
        let f = try XCTUnwrap(fixture)
        let ctl = try ExecutableRunner.executable("diffusionctl")
        let absent = f.directory + "/absent.sock"
        let (status, _, err) = try ExecutableRunner.run(ctl, ["status"], environment: ["DIFFUSIOND_SOCKET": absent])
        XCTAssertEqual(status, 69)
        XCTAssertTrue(err.contains("not running") && err.contains(absent), err)
    }

    func testSubmitIntoAnInboxOfAnotherGroupExits77NamingIt() throws {
        let f = try XCTUnwrap(fixture)
        let ctl = try ExecutableRunner.executable("diffusionctl")
        grantGroup(f)
        let inbox = f.directory + "/inbox"
        XCTAssertEqual(mkdir(inbox, 0o770), 0)
        f.queue.inbox = inbox
        let job = f.directory + "/job.yaml"
        try Data("prompt: x\n".utf8).write(to: URL(fileURLWithPath: job))
        XCTAssertEqual(chmod(job, 0o644), 0)
        let (status, _, err) = try ExecutableRunner.run(ctl, ["--socket", f.socketPath, "submit", job], asUID: nobody)
        XCTAssertEqual(status, 77, err)
        // The inbox belongs to group root here (a daemon run by hand): joining root's group is
        // not the advice; running as the daemon's user or moving the paths is.
        XCTAssertTrue(err.contains(inbox) && err.contains("the inbox belongs to group 'root' (a daemon started by hand as root"), err)
        XCTAssertFalse(err.contains("join the group 'root'"), err)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: inbox), [], "nothing is left in the inbox")
        // Root may: the file arrives under its own name.
        let (rootStatus, rootOut, rootErr) = try ExecutableRunner.run(ctl, ["--socket", f.socketPath, "submit", job])
        XCTAssertEqual(rootStatus, 0, rootErr)
        XCTAssertTrue(rootOut.contains(inbox + "/job.yaml"), rootOut)
    }
}
