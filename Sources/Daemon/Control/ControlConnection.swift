#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ControlProtocol

/// One client connection: handshake, then requests until the client hangs up.
///
/// Bad input never ends the process: malformed lines are answered `bad_request` (and an
/// over-long line also closes the connection, since the stream cannot be re-synchronised).
final class ControlConnection: @unchecked Sendable {
    let channel: LineChannel
    /// Strong on purpose: the server outlives its connection threads (``ControlServer/stop()`` waits).
    let server: ControlServer
    /// Peer credentials; nil only if the kernel refused SO_PEERCRED (then the connection is refused).
    let peer: PeerCredentials?
    private let writeLock = NSLock()

    init(fd: Int32, server: ControlServer) {
        channel = LineChannel(fd: fd, maxLineBytes: ControlWire.maxRequestLineBytes)
        self.server = server
        peer = PeerCredentials.of(socket: fd)
    }

    /// Sends a failure and closes (used when the server is full or stopping).
    func refuse(_ failure: ControlFailure) {
        try? send(.failure(failure))
        channel.close()
    }

    /// Wakes a blocked read or poll so that ``run()`` returns (server stop).
    func hangUp() {
        _ = shutdown(channel.fd, Int32(SHUT_RDWR))
    }

    func send(_ message: ServerMessage) throws {
        writeLock.lock()
        defer { writeLock.unlock() }
        try channel.write(message)
    }

    func run() {
        defer { channel.close() }
        guard let peer else {
            try? send(.failure(.unavailable("cannot read the peer's credentials (SO_PEERCRED)")))
            return
        }
        channel.setReceiveTimeout(seconds: server.configuration.idleTimeoutSeconds)
        // A line trickled in a byte at a time must still end soon.
        channel.lineTimeoutSeconds = Double(server.configuration.requestTimeoutSeconds)
        // A client that stops reading (a watcher too) is dropped rather than holding its slot.
        channel.setSendTimeout(seconds: server.configuration.requestTimeoutSeconds)
        do {
            guard try handshake(peer) else { return }
            while let line = try channel.readLine() {
                let request: Request
                do {
                    let envelope = try WireCodec.decode(MessageEnvelope.self, from: line)
                    guard envelope.type == "request" else {
                        try send(.failure(.badRequest("expected a line of type \"request\", got \(envelope.type.map { "\"\($0)\"" } ?? "no type")")))
                        continue
                    }
                    request = try WireCodec.decode(Request.self, from: line)
                } catch let error as WireError {
                    try send(.failure(.badRequest("malformed request: \(error)")))
                    continue
                }
                if try !dispatch(request, peer: peer) { return }
            }
        } catch WireError.lineTooLong(let limit) {
            try? send(.failure(.badRequest("request line longer than \(limit) bytes; closing the connection")))
        } catch WireError.timedOut {
            try? send(.failure(.unavailable("idle for \(server.configuration.idleTimeoutSeconds) s; closing the connection")))
        } catch WireError.lineTimedOut(let seconds) {
            try? send(.failure(.badRequest("request line not finished within \(Int(seconds)) s; closing the connection")))
        } catch {
            // Peer went away or the server is stopping: nothing to answer.
        }
    }

    /// Reads the client hello and answers; false when the connection should close.
    private func handshake(_ peer: PeerCredentials) throws -> Bool {
        guard let line = try channel.readLine() else { return false }
        let hello: ClientHello
        do {
            let envelope = try WireCodec.decode(MessageEnvelope.self, from: line)
            guard envelope.type == "hello" else {
                try send(.failure(.badRequest("expected a hello line first, e.g. {\"type\":\"hello\",\"version\":\(ControlWire.version)}")))
                return false
            }
            hello = try WireCodec.decode(ClientHello.self, from: line)
        } catch let error as WireError {
            try send(.failure(.badRequest("malformed hello: \(error)")))
            return false
        }
        guard hello.version >= ControlWire.minimumVersion else {
            try send(.failure(.badRequest("protocol version \(hello.version) is not supported; this server speaks "
                + "\(ControlWire.minimumVersion)…\(ControlWire.version)")))
            return false
        }
        let version = min(hello.version, ControlWire.version)
        try send(ServerMessage(type: .hello, version: version, server: server.configuration.serverName, uid: peer.uid))
        return true
    }

    /// Carries out one request; false when the connection should close (after `watch`).
    private func dispatch(_ request: Request, peer: PeerCredentials) throws -> Bool {
        guard let verb = Verb(rawValue: request.verb) else {
            try send(.failure(.badRequest("unknown verb '\(request.verb)'; this server knows: "
                + Verb.allCases.map(\.rawValue).joined(separator: ", "))))
            return true
        }
        do {
            if verb == .watch {
                try watch()
                return false
            }
            try perform(verb, request, caller: peer.uid)
        } catch let failure as ControlFailure {
            try send(.failure(failure))
        } catch let error as WireError {
            throw error
        } catch {
            server.log(3, "\(verb.rawValue) failed: \(error)")
            try send(.failure(.unavailable("\(verb.rawValue) failed inside the daemon: \(error)")))
        }
        return true
    }

    private func perform(_ verb: Verb, _ request: Request, caller: UInt32) throws {
        let handler = server.handler
        func requireID() throws -> String {
            guard let id = request.id, !id.isEmpty else { throw ControlFailure.badRequest("\(verb.rawValue) needs a job id") }
            return id
        }
        /// Looks the job up, checks the caller may change it, then applies `change`.
        func changeJob(_ change: (String) throws -> JobInfo) throws {
            let id = try requireID()
            let job = try handler.show(id: id)
            if let denied = server.policy.check(verb, caller: caller, jobOwner: job.owner.uid) { throw denied }
            // `id` may be a job's name; the change goes to the job it named.
            let after = try change(job.id)
            server.log(7, "\(verb.rawValue) \(id) by uid \(caller)")
            try send(.response(.ok, job: after))
        }
        switch verb {
        case .status:
            try send(.response(.ok, daemon: handler.status()))
        case .queue:
            try sendJobs(handler.list(all: request.all ?? false))
        case .history:
            if let limit = request.limit, limit < 0 { throw ControlFailure.badRequest("limit must be 0 or more, got \(limit)") }
            guard request.rejected == true else { return try sendJobs(handler.history(limit: request.limit)) }
            try sendHistory(jobs: handler.history(limit: request.limit), rejections: handler.rejections(limit: request.limit),
                            limit: request.limit)
        case .intake:
            let outcomes = try handler.intake(since: request.since)
            try send(.response(.ok))
            for outcome in outcomes { try send(ServerMessage(type: .item, intake: outcome)) }
            try send(ServerMessage(type: .end, count: outcomes.count))
        case .models:
            let models = try handler.models()
            try send(.response(.ok))
            for model in models { try send(ServerMessage(type: .item, model: model)) }
            try send(ServerMessage(type: .end, count: models.count))
        case .show:
            try send(.response(.ok, job: handler.show(id: requireID())))
        case .cancel:
            try changeJob { try handler.cancel(id: $0, caller: caller) }
        case .hold:
            try changeJob { try handler.hold(id: $0, caller: caller) }
        case .release:
            try changeJob { try handler.release(id: $0, caller: caller) }
        case .retry:
            try changeJob { try handler.retry(id: $0, caller: caller) }
        case .priority:
            guard let level = request.priority else { throw ControlFailure.badRequest(JobPriority.missingLevelMessage) }
            guard let priority = JobPriority(rawValue: level) else { throw ControlFailure.badRequest(JobPriority.outOfRangeMessage(level)) }
            try changeJob { try handler.setPriority(id: $0, priority: priority, caller: caller) }
        case .pause, .resume:
            if let denied = server.policy.check(verb, caller: caller) { throw denied }
            if verb == .pause { try handler.pause(caller: caller) } else { try handler.resume(caller: caller) }
            server.log(7, "\(verb.rawValue) by uid \(caller)")
            try send(.response(.ok))
        case .watch:
            try watch()
        }
    }

    private func sendJobs(_ jobs: [JobInfo]) throws {
        try send(.response(.ok))
        for job in jobs { try send(ServerMessage(type: .item, job: job)) }
        try send(ServerMessage(type: .end, count: jobs.count))
    }

    /// Finished jobs and rejected files merged newest first (each list is newest first),
    /// at most `limit` in all.
    private func sendHistory(jobs: [JobInfo], rejections: [RejectionInfo], limit: Int?) throws {
        var items: [ServerMessage] = []
        var j = jobs[...], r = rejections[...]
        while items.count < (limit ?? Int.max), !j.isEmpty || !r.isEmpty {
            if let job = j.first, r.first.map({ (job.finished ?? job.submitted) >= $0.time }) ?? true {
                items.append(ServerMessage(type: .item, job: job))
                j = j.dropFirst()
            } else if let rejection = r.first {
                items.append(ServerMessage(type: .item, rejection: rejection))
                r = r.dropFirst()
            }
        }
        try send(.response(.ok))
        for item in items { try send(item) }
        try send(ServerMessage(type: .end, count: items.count))
    }

    /// Streams events until the client hangs up or the server stops.
    private func watch() throws {
        let pending = EventBuffer()
        guard pending.isOpen else { throw ControlFailure.unavailable("cannot set up the event stream") }
        let token = server.handler.events.subscribe { pending.append($0) }
        defer { server.handler.events.unsubscribe(token) }
        try send(.response(.ok))
        var scratch = [UInt8](repeating: 0, count: 4096)
        while true {
            var fds = [pollfd(fd: channel.fd, events: Int16(POLLIN) | ControlPosix.pollReadHangUp, revents: 0),
                       pollfd(fd: pending.wakeFD, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 {
                for event in pending.drain() { try send(ServerMessage(type: .event, event: event)) }
            }
            let peerEvents = fds[0].revents
            let hangUp: Int16 = Int16(POLLHUP) | Int16(POLLERR) | Int16(POLLNVAL) | ControlPosix.pollReadHangUp
            if peerEvents & hangUp != 0 { return }
            if peerEvents & Int16(POLLIN) != 0 {
                // Anything a watching client sends is ignored; end of stream ends the watch.
                let n = scratch.withUnsafeMutableBytes { recv(channel.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN) { return }
            }
        }
    }
}

/// Bounded per-watcher event queue with a pipe to wake the watcher's poll.
/// When full, the oldest `step` event is dropped first (later steps supersede it).
final class EventBuffer: @unchecked Sendable {
    static let capacity = 1024
    private let lock = NSLock()
    private var events: [ControlEvent] = []
    private var pipeFDs: [Int32] = [-1, -1]

    init() {
        pipeFDs = ControlPosix.makePipe() ?? [-1, -1]
    }

    deinit {
        for fd in pipeFDs where fd >= 0 { _ = close(fd) }
    }

    var isOpen: Bool { pipeFDs[0] >= 0 }
    var wakeFD: Int32 { pipeFDs[0] }

    func append(_ event: ControlEvent) {
        lock.lock()
        if events.count >= EventBuffer.capacity {
            if let index = events.firstIndex(where: { $0.kind == ControlEvent.Kind.step.rawValue }) {
                events.remove(at: index)
            } else {
                events.removeFirst()
            }
        }
        events.append(event)
        lock.unlock()
        var byte: UInt8 = 1
        _ = write(pipeFDs[1], &byte, 1)
    }

    func drain() -> [ControlEvent] {
        var sink = [UInt8](repeating: 0, count: 256)
        while sink.withUnsafeMutableBytes({ read(pipeFDs[0], $0.baseAddress, $0.count) }) > 0 {}
        lock.lock()
        defer { lock.unlock() }
        let taken = events
        events.removeAll(keepingCapacity: true)
        return taken
    }
}
