#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// `struct ucred` from <sys/socket.h> (Linux): 12 bytes, not exported by Swift's Glibc module.
struct LinuxUcred {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

/// The process at the other end of a Unix socket, as the kernel recorded it at connect time.
public struct PeerCredentials: Equatable, Sendable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// Reads `SO_PEERCRED` of a connected `AF_UNIX` socket; nil when the kernel refuses.
    public static func of(socket fd: Int32) -> PeerCredentials? {
        var cred = LinuxUcred()
        var length = socklen_t(MemoryLayout<LinuxUcred>.size)
        let soPeerCred: Int32 = 17 // SO_PEERCRED, asm-generic/socket.h (x86_64, aarch64)
        let rc = getsockopt(fd, SOL_SOCKET, soPeerCred, &cred, &length)
        guard rc == 0, Int(length) == MemoryLayout<LinuxUcred>.size else { return nil }
        return PeerCredentials(pid: cred.pid, uid: cred.uid, gid: cred.gid)
    }
}
