#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Helpers for `AF_UNIX` stream sockets addressed by path.
public enum UnixSocket {
    /// Builds a `sockaddr_un` for `path` and calls `body` with it and its length.
    public static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) throws -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else { throw WireError.pathTooLong(path) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        return try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) }
        }
    }

    /// Connects a new close-on-exec stream socket to `path`; returns the fd.
    /// Throws ``WireError/system(call:errno:)`` with `connect`'s errno (ENOENT, ECONNREFUSED,
    /// EACCES …) so callers can tell "not running" from "permission denied".
    public static func connect(path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw WireError.system(call: "socket", errno: errno) }
        do {
            try withAddress(path) { address, length in
                while Glibc.connect(fd, address, length) != 0 {
                    let code = errno
                    if code == EINTR { continue }
                    throw WireError.system(call: "connect", errno: code)
                }
            }
        } catch {
            _ = close(fd)
            throw error
        }
        return fd
    }
}
