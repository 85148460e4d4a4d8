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

    /// Who may use each verb, decided here by hand, not read from `Verb.access`: a verb added
    /// later must be placed in this table, and a verb that changes anything must not be
    /// filed as read-only (the test below sees the change).
    static let expectedAccess: [Verb: Verb.Access] = [
        .status: .read, .queue: .read, .show: .read, .history: .read, .watch: .read, .models: .read, .intake: .read,
        .cancel: .job, .hold: .job, .release: .job, .priority: .job, .retry: .job,
        .pause: .queueWide, .resume: .queueWide,
    ]

    /// Sends each request line as uid `nobody` over the real socket (one connection each, a
    /// perl client from perl-base under setpriv) and returns each first `response` line.
    private func sendAsNobody(_ f: ServerFixture, _ requests: [String]) throws -> [String] {
        let script = """
        use IO::Socket::UNIX; $| = 1; my $path = shift @ARGV;
        for my $req (@ARGV) {
          my $c = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path) or die "connect: $!";
          print $c "{\\"type\\":\\"hello\\",\\"version\\":2,\\"client\\":\\"table\\"}\\n", $req, "\\n";
          my $answer = "none";
          while (my $line = <$c>) { if ($line =~ /"type":"response"/) { $answer = $line; last } }
          chomp $answer; print "$answer\\n"; close $c;
        }
        """
        let (status, out, err) = try ExecutableRunner.run("/usr/bin/perl", ["-e", script, f.socketPath] + requests, asUID: nobody)
        XCTAssertEqual(status, 0, err)
        return out.split(separator: "\n").map(String.init)
    }

    /// The whole verb → access table over the real socket as another uid: read verbs answer
    /// and change nothing; job verbs are refused on another's job (nothing changes) and
    /// allowed on one's own; queue-wide verbs are refused.
    func testEveryVerbsAccessOverTheSocketAsAnotherUser() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/perl") else { throw XCTSkip("perl (Debian's essential perl-base) missing") }
        let f = try XCTUnwrap(fixture)
        grantGroup(f)
        XCTAssertEqual(Set(Self.expectedAccess.keys), Set(Verb.allCases), "every verb is in the table")
        for verb in Verb.allCases { XCTAssertEqual(verb.access, Self.expectedAccess[verb], "\(verb.rawValue)") }
        try f.queue.pause(caller: 0)  // so that a resume that went through would show
        func snapshot() throws -> String {
            "\(try f.queue.list(all: true)) paused=\(f.queue.paused)"
        }
        func request(_ verb: Verb, id: String?) -> String {
            var fields = ["\"type\":\"request\"", "\"verb\":\"\(verb.rawValue)\""]
            if let id { fields.append("\"id\":\"\(id)\"") }
            if verb == .priority { fields.append("\"priority\":90") }
            return "{" + fields.joined(separator: ",") + "}"
        }
        for verb in Verb.allCases {
            let access = try XCTUnwrap(Self.expectedAccess[verb])
            // A job of root's in the state the verb acts on.
            let state: JobState = verb == .release ? .held : verb == .retry ? .failed : .queued
            let roots = f.queue.add(name: "roots-\(verb.rawValue)", owner: 0, state: state)
            let before = try snapshot()
            let answer = try sendAsNobody(f, [request(verb, id: verb.needsJobID ? roots.id : nil)]).first ?? ""
            switch access {
            case .read:
                XCTAssertTrue(answer.contains("\"status\":\"ok\""), "\(verb.rawValue): \(answer)")
                XCTAssertEqual(try snapshot(), before, "\(verb.rawValue) is read-only but changed the queue")
            case .job, .queueWide:
                XCTAssertTrue(answer.contains("\"status\":\"forbidden\""), "\(verb.rawValue): \(answer)")
                XCTAssertEqual(try snapshot(), before, "a refused \(verb.rawValue) changed the queue")
            }
            if access == .job {
                let own = f.queue.add(name: "own-\(verb.rawValue)", owner: nobody, state: state)
                let ownAnswer = try sendAsNobody(f, [request(verb, id: own.id)]).first ?? ""
                XCTAssertTrue(ownAnswer.contains("\"status\":\"ok\""), "\(verb.rawValue) on one's own job: \(ownAnswer)")
                XCTAssertNotEqual(try f.queue.show(id: own.id), own, "\(verb.rawValue) changed the owner's job")
            }
        }
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
