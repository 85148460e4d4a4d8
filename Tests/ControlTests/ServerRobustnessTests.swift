#if canImport(Glibc)
import Glibc
#endif
import XCTest
import Foundation
import ControlProtocol
import ControlClient
import Daemon

/// The server under hostile or heavy use: junk bytes, many clients at once, a full house.
final class ServerRobustnessTests: XCTestCase {
    /// Deterministic junk (64-bit LCG, Knuth's MMIX constants).
    private struct Junk {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }
    }

    func testJunkNeverKillsTheServer() throws {
        let f = try ServerFixture()
        defer { f.tearDown() }
        f.queue.add(name: "survivor")
        var junk = Junk(state: 42)
        let fragments = ["{", "}", "\"type\":\"request\"", "\"verb\":", "\"hello\"", ",", "null", "[", "1e999", "\"\\u0000\"", "\n"]
        for round in 0..<40 {
            let channel = LineChannel(fd: try UnixSocket.connect(path: f.socketPath), maxLineBytes: ControlWire.maxResponseLineBytes)
            if round % 2 == 0 {
                try channel.write(ClientHello())
                _ = try channel.readLine()
            }
            var payload = Data()
            for _ in 0..<20 {
                if junk.next() % 2 == 0 {
                    payload.append(contentsOf: junk.bytes(Int(junk.next() % 200)))
                } else {
                    payload.append(contentsOf: Array(fragments[Int(junk.next() % UInt64(fragments.count))].utf8))
                }
            }
            payload.append(0x0A)
            try? channel.writeAll(payload)
            // Whatever the server answers, it answers with protocol lines, then we hang up.
            channel.close()
        }
        XCTAssertEqual(try ControlSession(socketPath: f.socketPath).queue(all: false).map(\.name), ["survivor"])
    }

    func testDeeplyNestedJSONIsRefusedNotRecursedInto() throws {
        let f = try ServerFixture()
        defer { f.tearDown() }
        let channel = LineChannel(fd: try UnixSocket.connect(path: f.socketPath), maxLineBytes: ControlWire.maxResponseLineBytes)
        try channel.write(ClientHello())
        _ = try channel.readLine()
        for opener in ["[", "{\"a\":"] {
            let depth = (ControlWire.maxRequestLineBytes - 1) / opener.utf8.count
            try channel.writeAll(Data(String(repeating: opener, count: depth).utf8) + Data([0x0A]))
            XCTAssertEqual(try channel.read(ServerMessage.self)?.status, .badRequest, opener)
        }
        try channel.write(Request(verb: .status))
        XCTAssertEqual(try channel.read(ServerMessage.self)?.status, .ok)
    }

    func testManyClientsAtOnceGetConsistentAnswers() throws {
        let f = try ServerFixture()
        defer { f.tearDown() }
        for index in 0..<10 { f.queue.add(name: "job\(index)", priority: index * 10) }
        let group = DispatchGroup()
        let failures = Counter()
        for _ in 0..<16 {
            group.enter()
            Thread {
                defer { group.leave() }
                for _ in 0..<10 {
                    guard let client = try? ControlSession(socketPath: f.socketPath),
                          let jobs = try? client.queue(all: false),
                          jobs.map(\.priority) == (0..<10).map({ (9 - $0) * 10 }) else {
                        failures.increment()
                        continue
                    }
                    client.close()
                }
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success)
        XCTAssertEqual(failures.value, 0)
    }

    func testConnectionsBeyondTheLimitAreRefusedAsUnavailable() throws {
        let directory = NSTemporaryDirectory() + "ctl-limit-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socketPath = directory + "/control.sock"
        let server = ControlServer(configuration: .init(socketPath: socketPath, maxConnections: 2, allowSocketActivation: false),
                                   handler: InTestQueue(), log: { _, _ in })
        try server.start()
        defer { server.stop() }
        let first = try ControlSession(socketPath: socketPath)
        let second = try ControlSession(socketPath: socketPath)
        XCTAssertThrowsError(try ControlSession(socketPath: socketPath)) { error in
            guard case ClientError.server(let failure) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(failure.status, .unavailable)
            XCTAssertTrue(failure.message.contains("too many"), failure.message)
        }
        XCTAssertNoThrow(try first.status())
        first.close()
        second.close()
    }
}

/// A thread-safe counter.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
