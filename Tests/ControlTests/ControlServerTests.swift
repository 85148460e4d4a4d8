#if canImport(Glibc)
import Glibc
#endif
import XCTest
import Foundation
import ControlProtocol
import ControlClient
@testable import Daemon

/// The real control server on a temp socket, with ``InTestQueue`` behind it, driven by the
/// real client (and by raw lines where the client would never send them).
final class ControlServerTests: XCTestCase {
    var directory = ""
    var socketPath = ""
    var queue = InTestQueue()
    var server: ControlServer?
    var logged: [String] = []
    let logLock = NSLock()

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "ctl-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        socketPath = directory + "/run/control.sock"
        queue = InTestQueue()
        let server = ControlServer(configuration: .init(socketPath: socketPath, allowSocketActivation: false),
                                   handler: queue, log: { [weak self] priority, message in
            self?.logLock.lock()
            self?.logged.append("<\(priority)>\(message)")
            self?.logLock.unlock()
        })
        try server.start()
        self.server = server
    }

    override func tearDown() {
        server?.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func client() throws -> ControlSession { try ControlSession(socketPath: socketPath) }

    /// A raw connection after (optionally) the handshake.
    private func raw(hello: Bool = true) throws -> LineChannel {
        let channel = LineChannel(fd: try UnixSocket.connect(path: socketPath), maxLineBytes: ControlWire.maxResponseLineBytes)
        if hello {
            try channel.write(ClientHello())
            XCTAssertEqual(try channel.read(ServerMessage.self)?.knownType, .hello)
        }
        return channel
    }

    private func failure(_ body: () throws -> Void) -> ControlFailure? {
        do {
            try body()
            return nil
        } catch ClientError.server(let failure) {
            return failure
        } catch {
            XCTFail("unexpected error \(error)")
            return nil
        }
    }

    func testSocketModeAndDirectoryAreNotWorldAccessible() throws {
        var info = stat()
        XCTAssertEqual(lstat(socketPath, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK)
        XCTAssertEqual(info.st_mode & 0o777, 0o660)
        XCTAssertEqual(stat(directory + "/run", &info), 0)
        XCTAssertEqual(info.st_mode & 0o007, 0)
        server?.stop()
        XCTAssertNotEqual(access(socketPath, F_OK), 0, "stop removes the socket it created")
    }

    func testHandshakeReportsVersionAndPeerUID() throws {
        let connection = try client()
        XCTAssertEqual(connection.version, ControlWire.version)
        XCTAssertEqual(connection.peerUID, geteuid())
        XCTAssertEqual(connection.serverName, "diffusiond")
    }

    func testStatusQueueOrderShowAndModels() throws {
        let low = queue.add(name: "low", priority: 25)
        let urgent = queue.add(name: "urgent", priority: 100)
        let normalA = queue.add(name: "a", priority: 50)
        let normalB = queue.add(name: "b", priority: 50)
        queue.add(name: "old", priority: 50, state: .done)
        let connection = try client()
        let status = try connection.status()
        XCTAssertEqual(status.count(.queued), 4)
        XCTAssertEqual(status.count(.done), 1)
        XCTAssertEqual(status.inbox, "/spool/inbox")
        XCTAssertEqual(try connection.queue(all: false).map(\.id), [urgent.id, normalA.id, normalB.id, low.id])
        XCTAssertEqual(try connection.queue(all: true).count, 5)
        XCTAssertEqual(try connection.show(normalB.id).name, "b")
        XCTAssertEqual(failure { _ = try connection.show("nope") }?.status, .notFound)
        XCTAssertEqual(try connection.models().map(\.name), ["shapes", "sd15"])
        XCTAssertEqual(try connection.history().map(\.name), ["old"])
    }

    func testJobChangesAndTheirConflicts() throws {
        let first = queue.add(name: "first", priority: 50)
        let second = queue.add(name: "second", priority: 50)
        let connection = try client()
        XCTAssertEqual(try connection.setPriority(second.id, to: 90).priority, 90)
        XCTAssertEqual(try connection.queue(all: false).map(\.id), [second.id, first.id])
        XCTAssertEqual(failure { _ = try connection.setPriority(first.id, to: 101) }?.status, .badRequest)
        XCTAssertEqual(try connection.change(.hold, id: first.id).state, .held)
        XCTAssertEqual(failure { _ = try connection.change(.hold, id: first.id) }?.status, .conflict)
        XCTAssertEqual(try connection.change(.release, id: first.id).state, .queued)
        XCTAssertEqual(failure { _ = try connection.change(.retry, id: first.id) }?.status, .conflict)
        XCTAssertEqual(try connection.change(.cancel, id: first.id).state, .cancelled)
        XCTAssertEqual(try connection.change(.retry, id: first.id).state, .queued)
        XCTAssertEqual(failure { _ = try connection.change(.cancel, id: "missing") }?.status, .notFound)
        try connection.pause()
        XCTAssertTrue(try connection.status().paused)
        try connection.resume()
        XCTAssertFalse(try connection.status().paused)
        XCTAssertEqual(queue.log, ["pause \(geteuid())", "resume \(geteuid())"])
    }

    func testBadInputIsAnsweredAndTheServerKeepsServing() throws {
        // No hello first.
        let noHello = try raw(hello: false)
        try noHello.write(Request(verb: .status))
        XCTAssertEqual(try noHello.read(ServerMessage.self)?.status, .badRequest)
        XCTAssertNil(try noHello.readLine(), "connection closed after a missing hello")

        // Version too old.
        let old = try raw(hello: false)
        try old.write(ClientHello(version: 0))
        let oldAnswer = try old.read(ServerMessage.self)
        XCTAssertEqual(oldAnswer?.status, .badRequest)
        XCTAssertTrue(oldAnswer?.message?.contains("version 0") ?? false)

        // Garbage, wrong types, unknown verb, missing arguments: answered, connection stays.
        let channel = try raw()
        for line in ["not json", "{\"type\":\"request\",\"verb\":7}", "{\"type\":\"hello\",\"version\":1}", "\u{1}\u{2}", "[]"] {
            try channel.writeAll(Data((line + "\n").utf8))
            XCTAssertEqual(try channel.read(ServerMessage.self)?.status, .badRequest, line)
        }
        try channel.writeAll(Data([0xFF, 0xFE, 0x0A]))
        XCTAssertEqual(try channel.read(ServerMessage.self)?.status, .badRequest)
        try channel.write(Request(rawVerb: "teleport"))
        let unknown = try channel.read(ServerMessage.self)
        XCTAssertEqual(unknown?.status, .badRequest)
        XCTAssertTrue(unknown?.message?.contains("teleport") ?? false)
        try channel.write(Request(verb: .cancel))
        XCTAssertEqual(try channel.read(ServerMessage.self)?.status, .badRequest)
        try channel.write(Request(verb: .status))
        XCTAssertEqual(try channel.read(ServerMessage.self)?.status, .ok)

        // A line over the bound: answered, then the connection is closed.
        try channel.writeAll(Data(repeating: 0x20, count: ControlWire.maxRequestLineBytes + 10) + Data([0x0A]))
        let tooLong = try channel.read(ServerMessage.self)
        XCTAssertEqual(tooLong?.status, .badRequest)
        XCTAssertTrue(tooLong?.message?.contains("\(ControlWire.maxRequestLineBytes)") ?? false)

        // Still serving new clients.
        XCTAssertEqual(try client().status().version, "test")
    }

    func testWatchStreamsPublishedEventsInOrder() throws {
        let job = queue.add(name: "w", priority: 50)
        let channel = try raw()
        try channel.write(Request(verb: .watch))
        XCTAssertEqual(try channel.read(ServerMessage.self)?.status, .ok)
        // The subscription exists before `ok` is sent, so nothing published now is lost.
        queue.events.publish(ControlEvent(kind: .jobStarted, job: job))
        for step in 1...3 {
            queue.events.publish(ControlEvent(kind: .step, id: job.id, progress: JobInfo.Progress(step: step, total: 10, image: 0, count: 1)))
        }
        queue.events.publish(ControlEvent(kind: .jobFinished, job: job))
        var kinds: [String] = []
        var steps: [Int] = []
        while kinds.count < 5, let message = try channel.read(ServerMessage.self) {
            guard let event = message.event else { continue }
            kinds.append(event.kind)
            if let step = event.progress?.step { steps.append(step) }
        }
        XCTAssertEqual(kinds, ["job_started", "step", "step", "step", "job_finished"])
        XCTAssertEqual(steps, [1, 2, 3])
        channel.close()
        // Stop hangs up on watchers too and returns.
        server?.stop()
        XCTAssertEqual(queue.events.subscriberCount, 0)
    }

    func testStaleSocketIsReplacedLiveOneAndNonSocketsAreNot() throws {
        // A second server on the live path refuses.
        let second = ControlServer(configuration: .init(socketPath: socketPath, allowSocketActivation: false), handler: queue, log: { _, _ in })
        XCTAssertThrowsError(try second.start()) { XCTAssertEqual($0 as? ControlSocketError, .inUse(path: self.socketPath)) }

        // A socket file nobody listens on is removed and replaced.
        let stalePath = directory + "/run/stale.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try UnixSocket.withAddress(stalePath) { address, length in XCTAssertEqual(bind(fd, address, length), 0) }
        close(fd)
        let replacing = ControlServer(configuration: .init(socketPath: stalePath, allowSocketActivation: false), handler: queue, log: { _, _ in })
        XCTAssertNoThrow(try replacing.start())
        XCTAssertEqual(try ControlSession(socketPath: stalePath).status().version, "test")
        replacing.stop()

        // A regular file is left alone.
        let filePath = directory + "/run/not-a-socket"
        XCTAssertTrue(FileManager.default.createFile(atPath: filePath, contents: Data("keep".utf8)))
        let refusing = ControlServer(configuration: .init(socketPath: filePath, allowSocketActivation: false), handler: queue, log: { _, _ in })
        XCTAssertThrowsError(try refusing.start()) { XCTAssertEqual($0 as? ControlSocketError, .notASocket(path: filePath)) }
        XCTAssertEqual(FileManager.default.contents(atPath: filePath), Data("keep".utf8))
    }

    func testClientErrorsMapToSysexits() throws {
        XCTAssertThrowsError(try ControlSession(socketPath: directory + "/run/absent.sock")) { error in
            guard case ClientError.notRunning(let socket, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(socket, self.directory + "/run/absent.sock")
            XCTAssertEqual((error as? ClientError)?.exitCode, 69)
            XCTAssertTrue("\(error)".contains("not running"))
        }
        XCTAssertEqual(ClientError.permissionDenied(socket: "/s", group: "diffusiond").exitCode, 77)
        XCTAssertTrue(ClientError.permissionDenied(socket: "/s", group: "diffusiond").description.contains("'diffusiond'"))
        XCTAssertEqual(ClientError.server(.forbidden("x")).exitCode, 77)
        XCTAssertEqual(ClientError.server(.badRequest("x")).exitCode, 64)
    }

    func testSocketActivationOnlyForOurPID() {
        XCTAssertEqual(SocketActivation.takeListenFDs(environment: ["LISTEN_PID": "1", "LISTEN_FDS": "1"]), [])
        XCTAssertEqual(SocketActivation.takeListenFDs(environment: ["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "0"]), [])
        XCTAssertEqual(SocketActivation.takeListenFDs(environment: ["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "2"]), [3, 4])
        XCTAssertEqual(SocketActivation.takeListenFDs(environment: [:]), [])
    }
}
