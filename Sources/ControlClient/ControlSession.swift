#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ControlProtocol

/// A connection to diffusiond's control socket, after the handshake.
///
/// Use one per command; requests are sent one after another on it.
public final class ControlSession {
    public let socketPath: String
    /// Protocol version agreed in the handshake.
    public let version: Int
    /// Server name from the hello.
    public let serverName: String
    /// Our uid as the server saw it.
    public let peerUID: UInt32?
    private let channel: LineChannel

    /// Connects and shakes hands. Throws ``ClientError``.
    public init(socketPath: String, clientName: String = "diffusionctl") throws {
        self.socketPath = socketPath
        let fd: Int32
        do {
            fd = try UnixSocket.connect(path: socketPath)
        } catch WireError.system(_, let code) {
            switch code {
            case EACCES, EPERM:
                throw ClientError.permissionDenied(socket: socketPath, group: ControlSession.groupName(for: socketPath))
            default:
                throw ClientError.notRunning(socket: socketPath, reason: String(cString: strerror(code)))
            }
        } catch {
            throw ClientError.notRunning(socket: socketPath, reason: "\(error)")
        }
        channel = LineChannel(fd: fd, maxLineBytes: ControlWire.maxResponseLineBytes)
        do {
            // A server that refuses the connection (full, stopping) answers and hangs up at
            // once, so the hello may not get through; its answer is still there to read.
            var writeError: Error?
            do { try channel.write(ClientHello(client: clientName)) } catch { writeError = error }
            let answer: ServerMessage?
            do {
                answer = try channel.read(ServerMessage.self)
            } catch {
                throw writeError ?? error
            }
            guard let hello = answer else {
                throw ClientError.notRunning(socket: socketPath, reason: "connection closed during the handshake")
            }
            if hello.knownType == .response, let status = hello.status, status != .ok {
                throw ClientError.server(ControlFailure(status, hello.message ?? status.rawValue))
            }
            guard hello.knownType == .hello, let version = hello.version else {
                throw ClientError.protocolViolation("expected a hello, got type '\(hello.type)'")
            }
            self.version = version
            serverName = hello.server ?? "diffusiond"
            peerUID = hello.uid
        } catch let error as ClientError {
            throw error
        } catch {
            throw ClientError.io("handshake with \(socketPath) failed: \(error)")
        }
    }

    /// Group that owns the socket, or its directory when the socket cannot be stat'ed.
    static func groupName(for socketPath: String) -> String? {
        var info = stat()
        if stat(socketPath, &info) == 0 { return AccountNames.groupName(info.st_gid) }
        let directory = (socketPath as NSString).deletingLastPathComponent
        if stat(directory, &info) == 0 { return AccountNames.groupName(info.st_gid) }
        return nil
    }

    /// Sends a request and returns its `response` line; throws ``ClientError/server(_:)``
    /// for a non-ok status.
    public func call(_ request: Request) throws -> ServerMessage {
        do {
            try channel.write(request)
            while true {
                guard let message = try channel.read(ServerMessage.self) else {
                    throw ClientError.io("diffusiond closed the connection before answering \(request.verb)")
                }
                // Lines of types this build does not know are skipped.
                guard message.knownType == .response else { continue }
                let status = message.status ?? .unavailable
                guard status == .ok else {
                    throw ClientError.server(ControlFailure(status, message.message ?? status.rawValue))
                }
                return message
            }
        } catch let error as ClientError {
            throw error
        } catch {
            throw ClientError.io("\(request.verb) on \(socketPath): \(error)")
        }
    }

    /// Sends a list request and collects its `item` lines up to the `end` line, checking the count.
    public func list(_ request: Request) throws -> [ServerMessage] {
        _ = try call(request)
        var items: [ServerMessage] = []
        do {
            while let message = try channel.read(ServerMessage.self) {
                switch message.knownType {
                case .item:
                    items.append(message)
                case .end:
                    guard message.count == items.count else {
                        throw ClientError.protocolViolation("list ended with count \(message.count.map(String.init) ?? "none") after \(items.count) items")
                    }
                    return items
                case .response:
                    throw ClientError.server(ControlFailure(message.status ?? .unavailable, message.message ?? "list aborted"))
                default:
                    continue
                }
            }
        } catch let error as ClientError {
            throw error
        } catch {
            throw ClientError.io("\(request.verb) on \(socketPath): \(error)")
        }
        throw ClientError.io("diffusiond closed the connection in the middle of a list")
    }

    // MARK: Typed calls

    /// The daemon's summary, with every state in `counts` (0 included) and `socket` the
    /// path this session connected to.
    public func status() throws -> DaemonStatus {
        guard var daemon = try call(Request(verb: .status)).daemon else {
            throw ClientError.protocolViolation("status response without a daemon record")
        }
        daemon.counts = daemon.countsWithZeros
        daemon.socket = socketPath
        return daemon
    }

    public func queue(all: Bool) throws -> [JobInfo] {
        try list(Request(verb: .queue, all: all)).compactMap(\.job)
    }

    public func history(limit: Int? = nil) throws -> [JobInfo] {
        try list(Request(verb: .history, limit: limit)).compactMap(\.job)
    }

    /// `history` with the rejected files, newest first (a daemon that does not list
    /// rejections sends jobs only).
    public func historyEntries(limit: Int? = nil) throws -> [HistoryEntry] {
        try list(Request(verb: .history, limit: limit, rejected: true)).compactMap { item in
            item.job.map(HistoryEntry.job) ?? item.rejection.map(HistoryEntry.rejection)
        }
    }

    /// What the intake made of inbox files after sequence `since`, oldest first.
    public func intake(since: Int?) throws -> [IntakeOutcome] {
        try list(Request(verb: .intake, since: since)).compactMap(\.intake)
    }

    public func models() throws -> [ModelInfo] {
        try list(Request(verb: .models)).compactMap(\.model)
    }

    public func show(_ id: String) throws -> JobInfo {
        try jobResponse(Request(verb: .show, id: id))
    }

    /// cancel, hold, release or retry one job; returns its record after the change.
    public func change(_ verb: Verb, id: String) throws -> JobInfo {
        try jobResponse(Request(verb: verb, id: id))
    }

    public func setPriority(_ id: String, to priority: Int) throws -> JobInfo {
        try jobResponse(Request(verb: .priority, id: id, priority: priority))
    }

    public func pause() throws { _ = try call(Request(verb: .pause)) }
    public func resume() throws { _ = try call(Request(verb: .resume)) }

    private func jobResponse(_ request: Request) throws -> JobInfo {
        guard let job = try call(request).job else {
            throw ClientError.protocolViolation("\(request.verb) response without a job record")
        }
        return job
    }

    /// Starts `watch` and calls `body` for each event until it returns false or the
    /// connection ends.
    public func watch(_ body: (ControlEvent) -> Bool) throws {
        _ = try call(Request(verb: .watch))
        do {
            while let message = try channel.read(ServerMessage.self) {
                guard message.knownType == .event, let event = message.event else { continue }
                if !body(event) { return }
            }
        } catch {
            throw ClientError.io("watch on \(socketPath): \(error)")
        }
    }

    /// Closes the connection.
    public func close() { channel.close() }
}
