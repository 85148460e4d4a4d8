import ControlProtocol
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's handle on one worker process: `/proc/self/exe --worker 3` started with
/// posix_spawn, its end of a socketpair as fd 3. Used by the `Worker` thread only.
final class WorkerProcess {
    let pid: pid_t
    private let channel: LineChannel
    /// True once the daemon sent SIGKILL itself: that death strikes nothing.
    private(set) var killedByDaemon = false
    private var exit: WorkerExit?

    /// Seconds a new worker has to say hello.
    static let helloSeconds = 60.0

    private init(pid: pid_t, channel: LineChannel) {
        self.pid = pid
        self.channel = channel
    }

    /// Starts a worker and waits for its hello, calling `waiting` every 0.2 s meanwhile (the
    /// daemon's watchdog: starting a worker is the daemon's own progress). Its environment is
    /// the daemon's without the systemd variables (it talks to the daemon only).
    static func spawn(waiting: () -> Void) throws -> WorkerProcess {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw RunError("cannot start the worker process: socketpair: \(String(cString: strerror(errno)))")
        }
        var childEnd = fds[1]
        if childEnd == 3 {
            // dup2(3, 3) would keep close-on-exec set.
            childEnd = fcntl(fds[1], F_DUPFD_CLOEXEC, 4)
            _ = close(fds[1])
        }
        defer { _ = close(childEnd) }
        let channel = LineChannel(fd: fds[0], maxLineBytes: WorkerWire.maxLineBytes)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, childEnd, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))

        var arguments = ["diffusiond", "--worker", "3"]
        if Log.maximum == .debug { arguments.append("--debug") }
        let hidden: Set<String> = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"]
        let environment = ProcessInfo.processInfo.environment.filter { !hidden.contains($0.key) }.map { "\($0.key)=\($0.value)" }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for p in argv + envp { free(p) } }
        var pid: pid_t = 0
        // /proc/self/exe: the very binary the daemon runs, even after an upgrade replaced the file.
        let rc = posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, &argv, &envp)
        guard rc == 0 else {
            throw RunError("cannot start the worker process: \(String(cString: strerror(rc)))")
        }
        let worker = WorkerProcess(pid: pid, channel: channel)
        let deadline = Date().addingTimeInterval(helloSeconds)
        while Date() < deadline, !Signals.stopRequested {
            waiting()
            switch worker.receive() {
            case .report(let report) where report.hello != nil:
                return worker
            case .report, .timeout:
                continue
            case .closed:
                throw RunError("the worker process ended at start (\(worker.reap()))")
            }
        }
        worker.kill()
        let ended = worker.reap()
        if Signals.stopRequested { throw RunError("the worker process was starting when the daemon stopped (\(ended))") }
        throw RunError("the worker process did not start within \(Int(helloSeconds)) s (\(ended))")
    }

    /// Sends `order`; false when the worker is gone.
    func send(_ order: WorkerOrder) -> Bool {
        do { try channel.write(order); return true } catch { return false }
    }

    enum Received {
        case report(WorkerReport)
        /// Nothing within the poll interval.
        case timeout
        /// The worker closed its end (it exited) or sent something unreadable; reap it.
        case closed
    }

    /// Waits up to `seconds` for the next report.
    func receive(seconds: Double = 0.2) -> Received {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1e6))
        _ = setsockopt(channel.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        do {
            guard let report = try channel.read(WorkerReport.self) else { return .closed }
            return .report(report)
        } catch WireError.timedOut {
            return .timeout
        } catch {
            Log.error("worker process \(pid): \(error); stopping it")
            kill()
            return .closed
        }
    }

    /// True when the process has ended (idle deaths are noticed before the next job).
    var hasExited: Bool {
        if exit != nil { return true }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return false }
        exit = WorkerExit(status: status)
        channel.close()
        return true
    }

    /// SIGKILL from the daemon (strikes nothing).
    func kill() {
        killedByDaemon = true
        _ = Glibc.kill(pid, SIGKILL)
    }

    /// Waits for the process to end; how it ended.
    @discardableResult
    func reap() -> WorkerExit {
        if let exit { return exit }
        channel.close()
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { break }
        }
        let ended = WorkerExit(status: status)
        exit = ended
        return ended
    }

    /// Ends an idle worker: closing the socket makes it exit; SIGKILL after `seconds`.
    func stop(seconds: Double = 10) {
        channel.close()
        let deadline = Date().addingTimeInterval(seconds)
        var status: Int32 = 0
        while Date() < deadline {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { exit = WorkerExit(status: status); return }
            if r < 0 && errno != EINTR { return }
            usleep(20_000)
        }
        Log.warning("worker process \(pid) did not stop within \(Int(seconds)) s; killing it")
        kill()
        reap()
    }
}
