#if canImport(Glibc)
import Glibc
#endif

/// POSIX bits that Swift's Glibc module does not export (they need _GNU_SOURCE).
enum ControlPosix {
    /// `POLLRDHUP` from <poll.h> (Linux): the peer shut down its writing half.
    static let pollReadHangUp: Int16 = 0x2000

    /// A pipe with both ends non-blocking and close-on-exec; nil on failure.
    static func makePipe() -> [Int32]? {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return nil }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        return fds
    }

    /// accept(2) on `fd`, marking the new socket close-on-exec; -1 with errno on failure.
    static func acceptCloseOnExec(_ fd: Int32) -> Int32 {
        let client = accept(fd, nil, nil)
        if client >= 0 { _ = fcntl(client, F_SETFD, FD_CLOEXEC) }
        return client
    }
}
