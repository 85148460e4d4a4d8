#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ControlProtocol

/// The control socket server: accepts connections on a Unix stream socket and serves each
/// on its own thread (see ``ControlConnection``), checking the peer's uid with
/// ``ControlPolicy``.
///
/// Thread-safety: ``start()`` and ``stop()`` are called from one thread (the daemon's main
/// thread); everything else runs on the accept thread and the connection threads.
///
/// Use from the daemon:
/// ```swift
/// let control = ControlServer(configuration: .init(socketPath: config.socket), handler: queueAdapter)
/// try control.start()          // throws ControlSocketError (log it, exit non-zero)
/// queueAdapter.events.publish(ControlEvent(kind: .step, id: job.id, progress: progress))
/// control.stop()               // on SIGTERM, before exiting
/// ```
public final class ControlServer: @unchecked Sendable {
    /// Settings of the server.
    public struct Configuration: Sendable {
        /// Socket path (from the config's `socket:`); unused when socket-activated.
        public var socketPath: String
        /// Connections served at once; more are answered `unavailable` and closed.
        public var maxConnections: Int
        /// Connections one uid may hold at once (root and the daemon's user excepted), so
        /// that one member of the socket's group cannot take every slot.
        public var maxConnectionsPerUser: Int
        /// Slots of `maxConnections` only root and the daemon's user may take: they can
        /// always reach the daemon, however many connections others hold.
        public var reservedConnections: Int
        /// Seconds a connection may stay silent between requests before it is closed
        /// (does not apply while a client is watching).
        public var idleTimeoutSeconds: Int
        /// Seconds a request line (the hello too) may take from its first byte to its
        /// newline, and a reply may wait for the client to read (a watcher that stops
        /// reading is dropped after this long).
        public var requestTimeoutSeconds: Int
        /// Name and version announced in the hello.
        public var serverName: String
        /// Take a listening socket from systemd (LISTEN_FDS) when there is one.
        public var allowSocketActivation: Bool

        public init(socketPath: String, maxConnections: Int = 64, maxConnectionsPerUser: Int = 8,
                    reservedConnections: Int = 4, idleTimeoutSeconds: Int = 30, requestTimeoutSeconds: Int = 5,
                    serverName: String = "diffusiond", allowSocketActivation: Bool = true) {
            self.socketPath = socketPath
            self.maxConnections = maxConnections
            self.maxConnectionsPerUser = maxConnectionsPerUser
            self.reservedConnections = reservedConnections
            self.idleTimeoutSeconds = idleTimeoutSeconds
            self.requestTimeoutSeconds = requestTimeoutSeconds
            self.serverName = serverName
            self.allowSocketActivation = allowSocketActivation
        }
    }

    public let configuration: Configuration
    let handler: ControlHandler
    let policy: ControlPolicy
    let log: (Int32, String) -> Void

    private let lock = NSLock()
    private var listenFD: Int32 = -1
    private var wakePipe: [Int32] = [-1, -1]
    private var connections: [ObjectIdentifier: ControlConnection] = [:]
    /// Open connections per peer uid.
    private var connectionsByUID: [UInt32: Int] = [:]
    private var stopping = false
    private var boundPath: String?
    private var acceptThread: Thread?
    private let acceptDone = DispatchSemaphore(value: 0)
    /// Entered for every connection thread, left when it ends; ``stop()`` waits on it.
    private let connectionThreads = DispatchGroup()

    /// Whether the listening socket came from systemd.
    public private(set) var socketActivated = false

    /// - Parameters:
    ///   - policy: permission rules; by default ``ControlPolicy/forThisProcess()``. The daemon
    ///     passes the one it made at start-up, as it does to its ``JobQueue``.
    ///   - log: receives (syslog priority 0–7, message); by default writes `<N>control: …` to stderr.
    public init(configuration: Configuration, handler: ControlHandler,
                policy: ControlPolicy = .forThisProcess(),
                log: @escaping (Int32, String) -> Void = ControlServer.logToStderr) {
        self.configuration = configuration
        self.handler = handler
        self.policy = policy
        self.log = log
    }

    /// Default log sink: one line to stderr with a syslog priority prefix, no timestamp;
    /// control characters (a job id a client sent) escaped.
    public static func logToStderr(_ priority: Int32, _ message: String) {
        let line = "<\(priority)>control: \(PrintableText.escaped(message, keepLayout: false))\n"
        line.utf8CString.withUnsafeBufferPointer { buffer in
            _ = write(2, buffer.baseAddress, buffer.count - 1)
        }
    }

    /// Opens the socket (socket activation first, else bind at the configured path) and
    /// starts accepting. Throws ``ControlSocketError`` when the socket cannot be set up.
    public func start() throws {
        var fd: Int32 = -1
        if configuration.allowSocketActivation {
            let passed = SocketActivation.takeListenFDs()
            if let first = passed.first(where: SocketActivation.isListeningUnixStream) {
                fd = first
                socketActivated = true
                log(6, "using the control socket passed by systemd (fd \(first))")
            } else if !passed.isEmpty {
                log(4, "LISTEN_FDS passed \(passed.count) fd(s) but none is a listening Unix stream socket; binding \(configuration.socketPath)")
            }
        }
        if fd < 0 {
            fd = try ControlSocketBinder.bind(path: configuration.socketPath, log: log)
            boundPath = configuration.socketPath
            log(6, "listening on \(configuration.socketPath)")
        }
        guard let pipeFDs = ControlPosix.makePipe() else {
            if boundPath != nil { _ = close(fd) }
            throw ControlSocketError.system(call: "pipe2", path: configuration.socketPath, errno: errno)
        }
        lock.lock()
        listenFD = fd
        wakePipe = pipeFDs
        stopping = false
        lock.unlock()
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "control-accept"
        acceptThread = thread
        thread.start()
    }

    /// Stops accepting, hangs up every connection, removes the socket file it created,
    /// and returns once the accept thread and every connection thread have finished (a
    /// request being carried out is finished first). Idempotent.
    public func stop() {
        lock.lock()
        if stopping || listenFD < 0 {
            lock.unlock()
            return
        }
        stopping = true
        let open = Array(connections.values)
        let wake = wakePipe[1]
        lock.unlock()
        var byte: UInt8 = 1
        _ = write(wake, &byte, 1)
        for connection in open { connection.hangUp() }
        acceptDone.wait()
        connectionThreads.wait()
        lock.lock()
        _ = close(listenFD)
        listenFD = -1
        _ = close(wakePipe[0])
        _ = close(wakePipe[1])
        wakePipe = [-1, -1]
        lock.unlock()
        if let path = boundPath {
            _ = unlink(path)
            boundPath = nil
        }
    }

    /// Number of connections being served now.
    public var connectionCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return connections.count
    }

    private func acceptLoop() {
        defer { acceptDone.signal() }
        lock.lock()
        let fd = listenFD
        let wake = wakePipe[0]
        lock.unlock()
        while true {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                log(3, "poll on the control socket failed: \(String(cString: strerror(errno))); no more control connections")
                return
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let client = ControlPosix.acceptCloseOnExec(fd)
            if client < 0 {
                let code = errno
                if code == EINTR || code == EAGAIN || code == ECONNABORTED { continue }
                log(3, "accept on the control socket failed: \(String(cString: strerror(code)))")
                if code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM {
                    // Out of resources: back off briefly instead of spinning.
                    usleep(100_000)
                    continue
                }
                return
            }
            serve(client)
        }
    }

    /// Why a new connection from `uid` cannot be served now, or nil. Called under `lock`.
    /// Root and the daemon's user may take any slot, others neither the reserved ones nor
    /// more than `maxConnectionsPerUser` of their own.
    private func refusal(uid: UInt32?) -> String? {
        let total = connections.count
        guard total < configuration.maxConnections else {
            return "too many control connections (\(configuration.maxConnections)); try again"
        }
        guard let uid else { return nil } // no credentials: run() refuses it
        if uid == 0 || uid == policy.daemonUID { return nil }
        let own = connectionsByUID[uid, default: 0]
        if own >= configuration.maxConnectionsPerUser {
            return "too many control connections from uid \(uid) (\(configuration.maxConnectionsPerUser)); close some and try again"
        }
        if total >= configuration.maxConnections - configuration.reservedConnections {
            return "too many control connections (\(configuration.maxConnections - configuration.reservedConnections) for users "
                + "other than root and the daemon's); try again"
        }
        return nil
    }

    private func serve(_ fd: Int32) {
        let connection = ControlConnection(fd: fd, server: self)
        let uid = connection.peer?.uid
        lock.lock()
        if stopping {
            lock.unlock()
            connection.refuse(ControlFailure.unavailable("diffusiond is shutting down"))
            return
        }
        if let reason = refusal(uid: uid) {
            lock.unlock()
            log(4, "refused a control connection from uid \(uid.map(String.init) ?? "?"): \(reason)")
            connection.refuse(ControlFailure.unavailable(reason))
            return
        }
        connections[ObjectIdentifier(connection)] = connection
        if let uid { connectionsByUID[uid, default: 0] += 1 }
        connectionThreads.enter()
        lock.unlock()
        let thread = Thread { [self] in
            connection.run()
            lock.lock()
            connections[ObjectIdentifier(connection)] = nil
            if let uid {
                connectionsByUID[uid, default: 1] -= 1
                if connectionsByUID[uid] == 0 { connectionsByUID[uid] = nil }
            }
            lock.unlock()
            connectionThreads.leave()
        }
        thread.name = "control-connection"
        thread.start()
    }
}
