#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// systemd socket activation (sd_listen_fds(3)): sockets passed from fd 3 on, announced by
/// `LISTEN_PID` (must be our pid) and `LISTEN_FDS` (how many).
public enum SocketActivation {
    /// First fd systemd passes.
    public static let firstFD: Int32 = 3

    /// The passed fds, or [] when the process was not socket-activated. Unsets
    /// `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` so children do not inherit them,
    /// and marks the fds close-on-exec.
    public static func takeListenFDs(environment: [String: String] = ProcessInfo.processInfo.environment) -> [Int32] {
        defer {
            unsetenv("LISTEN_PID")
            unsetenv("LISTEN_FDS")
            unsetenv("LISTEN_FDNAMES")
        }
        guard let pidText = environment["LISTEN_PID"], let pid = Int32(pidText), pid == getpid(),
              let countText = environment["LISTEN_FDS"], let count = Int32(countText), count > 0, count < 1024
        else { return [] }
        let fds = Array(firstFD..<(firstFD + count))
        for fd in fds {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
        return fds
    }

    /// Whether `fd` is a listening `AF_UNIX` stream socket.
    public static func isListeningUnixStream(_ fd: Int32) -> Bool {
        var type: Int32 = 0
        var listening: Int32 = 0
        var domain: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else { return false }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0 else { return false }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 else { return false }
        return type == Int32(SOCK_STREAM.rawValue) && listening != 0 && domain == AF_UNIX
    }
}
