#if canImport(Glibc)
import Glibc
#endif
import XCTest
import Foundation
import ControlProtocol
import ControlClient
import Daemon

/// One user cannot lock others out of the control socket (issue 23, failure 4): per-uid
/// connection limits with slots kept for root and the daemon's user, request lines that must
/// end within a few seconds however slowly they trickle in, and watchers that stop reading
/// dropped without holding anyone up.
final class ControlFairnessTests: XCTestCase {
    let nobody: UInt32 = 65534

    func makeServer(_ configure: (inout ControlServer.Configuration) -> Void = { _ in }) throws -> (ControlServer, InTestQueue, String) {
        let directory = NSTemporaryDirectory() + "ctl-fair-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let socketPath = directory + "/run/control.sock"
        var configuration = ControlServer.Configuration(socketPath: socketPath, allowSocketActivation: false)
        configure(&configuration)
        let queue = InTestQueue()
        let server = ControlServer(configuration: configuration, handler: queue, log: { _, _ in })
        try server.start()
        addTeardownBlock {
            server.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        return (server, queue, directory)
    }

    func waitUntil(_ what: String, limit: Double = 60, _ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(limit)
        while Date() < deadline {
            if condition() { return }
            usleep(20_000)
        }
        XCTFail("timed out waiting for: \(what)")
    }

    /// 64 connections from one member of the socket's group, each sending a byte a second
    /// and never a whole line: that user gets its 8, root still gets `status` at once, the
    /// same user's 65th is refused naming the limit, and the trickling lines are cut off.
    func testSixtyFourSlowConnectionsFromOneUserLeaveRootItsStatus() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to connect as another uid (setpriv); CI runs as root") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { throw XCTSkip("setpriv(1) missing") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/perl") else { throw XCTSkip("perl (Debian's essential perl-base) missing") }
        let (server, queue, directory) = try makeServer()
        let socketPath = server.configuration.socketPath
        queue.add(name: "roots")
        XCTAssertEqual(chmod(directory, 0o755), 0)
        XCTAssertEqual(chown(directory + "/run", 0, nobody), 0)
        XCTAssertEqual(chown(socketPath, 0, nobody), 0)

        // The slow client: perl from perl-base, as uid nobody.
        let script = """
        use IO::Socket::UNIX; $SIG{PIPE} = 'IGNORE'; $| = 1;
        my @s; for (1..64) { my $c = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]); push @s, $c if $c; }
        print scalar(@s), "\\n";
        while (1) { for my $c (@s) { $c->syswrite("{") } sleep 1; }
        """
        let slow = Process()
        slow.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        slow.arguments = ["--reuid=\(nobody)", "--regid=\(nobody)", "--clear-groups", "--", "/usr/bin/perl", "-e", script, socketPath]
        let out = Pipe()
        slow.standardOutput = out
        try slow.run()
        defer { slow.terminate(); slow.waitUntilExit() }
        let connected = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        XCTAssertEqual(connected.trimmingCharacters(in: .whitespacesAndNewlines), "64", "the slow client connected 64 times")
        waitUntil("the user's 8 are served") { server.connectionCount == 8 }
        usleep(300_000)
        XCTAssertEqual(server.connectionCount, 8, "one uid holds at most 8; the other 56 were refused")

        // The same user's next connection is refused, naming why (before the 5 s line limit frees the 8).
        let ctl = try ExecutableRunner.executable("diffusionctl")
        let (status, _, err) = try ExecutableRunner.run(ctl, ["--socket", socketPath, "status"], asUID: nobody)
        XCTAssertEqual(status, 69, err)
        XCTAssertTrue(err.contains("too many control connections from uid \(nobody) (8)"), err)

        // Root is served at once.
        let session = try ControlSession(socketPath: socketPath)
        XCTAssertEqual(try session.status().counts["queued"], 1)
        session.close()

        // Lines that never end are cut off after the request time limit (5 s).
        waitUntil("the trickling connections are closed", limit: 30) { server.connectionCount == 0 }
    }

    /// Others than root and the daemon's user cannot take the reserved slots.
    func testReservedSlotsAreKeptForRootAndTheDaemonUser() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to connect as another uid (setpriv); CI runs as root") }
        let (server, _, directory) = try makeServer { $0.maxConnections = 6; $0.reservedConnections = 2; $0.maxConnectionsPerUser = 8 }
        let socketPath = server.configuration.socketPath
        XCTAssertEqual(chmod(directory, 0o755), 0)
        XCTAssertEqual(chown(directory + "/run", 0, nobody), 0)
        XCTAssertEqual(chown(socketPath, 0, nobody), 0)
        let script = """
        use IO::Socket::UNIX; $| = 1;
        my @s; for (1..6) { my $c = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]); push @s, $c if $c; }
        print scalar(@s), "\\n"; sleep 60;
        """
        let user = Process()
        user.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        user.arguments = ["--reuid=\(nobody)", "--regid=\(nobody)", "--clear-groups", "--", "/usr/bin/perl", "-e", script, socketPath]
        let out = Pipe()
        user.standardOutput = out
        try user.run()
        defer { user.terminate(); user.waitUntilExit() }
        _ = out.fileHandleForReading.availableData
        waitUntil("the user's 4 are served") { server.connectionCount == 4 }
        usleep(300_000)
        XCTAssertEqual(server.connectionCount, 4, "6 slots less the 2 kept")
        let first = try ControlSession(socketPath: socketPath)
        let second = try ControlSession(socketPath: socketPath)
        XCTAssertNoThrow(try first.status())
        XCTAssertNoThrow(try second.status())
        first.close()
        second.close()
    }

    /// A client that sends its hello and then a request one byte at a time is told why and
    /// closed once the request time limit has passed.
    func testARequestLineTricklingInIsCutOff() throws {
        let (server, _, _) = try makeServer { $0.requestTimeoutSeconds = 1 }
        let fd = try UnixSocket.connect(path: server.configuration.socketPath)
        let channel = LineChannel(fd: fd, maxLineBytes: 1 << 20)
        channel.setReceiveTimeout(seconds: 30)
        try channel.write(ClientHello(client: "slow"))
        XCTAssertNotNil(try channel.readLine())
        var sent = 0
        var closedAfter: Int?
        for byte in Array("{\"type\":\"request\",\"verb\":\"status\"".utf8) {
            if send(fd, [byte], 1, Int32(MSG_NOSIGNAL)) != 1 { closedAfter = sent; break }
            sent += 1
            usleep(200_000)
        }
        let answer = try channel.readLine().map { String(decoding: $0, as: UTF8.self) } ?? "closed without an answer"
        XCTAssertTrue(answer.contains("request line not finished within 1 s; closing the connection"), answer)
        XCTAssertNil(try? channel.readLine(), "then closed")
        XCTAssertNotNil(closedAfter ?? sent, "sent \(sent) bytes")
    }

    /// A watcher that never reads is dropped once a reply has waited the request time limit;
    /// meanwhile everyone else is served.
    func testAWatcherThatDoesNotReadIsDroppedWithoutBlockingOthers() throws {
        let (server, queue, _) = try makeServer { $0.requestTimeoutSeconds = 1 }
        let fd = try UnixSocket.connect(path: server.configuration.socketPath)
        var small: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let channel = LineChannel(fd: fd, maxLineBytes: 1 << 20)
        try channel.write(ClientHello(client: "sleepy"))
        try channel.write(Request(verb: .watch))
        waitUntil("the watcher is connected") { server.connectionCount == 1 }
        let job = queue.add(name: String(repeating: "n", count: 60), steps: 10)
        // Far more than the socket buffers hold, while the watcher reads nothing.
        let started = Date()
        for k in 0..<20_000 {
            queue.events.publish(ControlEvent(kind: .queueChanged, id: "\(job.id)-\(k)", job: job))
            if k % 500 == 0 {
                let other = try ControlSession(socketPath: server.configuration.socketPath)
                XCTAssertNoThrow(try other.status())
                other.close()
            }
            if server.connectionCount == 0 { break }
        }
        waitUntil("the sleepy watcher is dropped", limit: 30) { server.connectionCount == 0 }
        print("watcher dropped \(String(format: "%.1f", Date().timeIntervalSince(started))) s after the events began")
        withExtendedLifetime(channel) {}
    }
}
