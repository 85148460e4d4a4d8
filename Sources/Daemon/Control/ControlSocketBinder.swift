#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ControlProtocol

/// Why the control socket could not be set up.
public enum ControlSocketError: Error, Equatable, CustomStringConvertible {
    /// Another process answers on the socket path (a second diffusiond?).
    case inUse(path: String)
    /// Something that is not a socket sits at the path; it is left alone.
    case notASocket(path: String)
    /// The path does not fit in a `sockaddr_un`.
    case pathTooLong(path: String)
    /// A system call failed on `path`.
    case system(call: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case .inUse(let path):
            return "\(path): another process is already listening on this control socket (is diffusiond running?)"
        case .notASocket(let path):
            return "\(path): exists and is not a socket; remove it or set another `socket:` path"
        case .pathTooLong(let path):
            return "\(path): socket path too long (at most 107 bytes)"
        case .system(let call, let path, let code):
            return "\(path): \(call): \(String(cString: strerror(code)))"
        }
    }
}

/// Creates the listening control socket at a path: parent directory not world-accessible,
/// a stale socket (one nobody answers on) removed, the new socket mode 0660.
public enum ControlSocketBinder {
    /// Binds and listens; returns the listening fd (close-on-exec).
    /// - Parameter log: receives (syslog priority, message) for notices about the directory.
    public static func bind(path: String, log: (Int32, String) -> Void) throws -> Int32 {
        try prepareDirectory(of: path, log: log)
        try removeStaleSocket(at: path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError.system(call: "socket", path: path, errno: errno) }
        do {
            do {
                try UnixSocket.withAddress(path) { address, length in
                    if Glibc.bind(fd, address, length) != 0 {
                        throw ControlSocketError.system(call: "bind", path: path, errno: errno)
                    }
                }
            } catch is WireError {
                throw ControlSocketError.pathTooLong(path: path)
            }
            // The directory is not world-accessible, so the socket's mode between bind and
            // chmod (0777 & ~umask) exposes nothing.
            guard chmod(path, 0o660) == 0 else { throw ControlSocketError.system(call: "chmod", path: path, errno: errno) }
            guard listen(fd, 64) == 0 else { throw ControlSocketError.system(call: "listen", path: path, errno: errno) }
        } catch {
            _ = close(fd)
            throw error
        }
        return fd
    }

    /// Creates the socket's directory (mode 0750) if missing; takes away world access if
    /// this process owns it, warns if it cannot.
    static func prepareDirectory(of path: String, log: (Int32, String) -> Void) throws {
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        var info = stat()
        if stat(directory, &info) != 0 {
            guard errno == ENOENT else { throw ControlSocketError.system(call: "stat", path: directory, errno: errno) }
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o750])
            } catch {
                throw ControlSocketError.system(call: "mkdir", path: directory, errno: EACCES)
            }
            guard stat(directory, &info) == 0 else { throw ControlSocketError.system(call: "stat", path: directory, errno: errno) }
        }
        let mode = info.st_mode & 0o7777
        if mode & 0o007 != 0 {
            if info.st_uid == geteuid(), chmod(directory, mode & ~0o007) == 0 {
                log(5, "\(directory): removed world access (mode \(String(mode, radix: 8)) → \(String(mode & ~0o007, radix: 8)))")
            } else {
                log(4, "\(directory): world-accessible (mode \(String(mode, radix: 8))); any local user can reach the control socket")
            }
        }
    }

    /// Removes `path` if it is a socket nobody listens on; throws if someone answers or if
    /// it is not a socket.
    static func removeStaleSocket(at path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw ControlSocketError.system(call: "lstat", path: path, errno: errno)
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw ControlSocketError.notASocket(path: path) }
        do {
            let fd = try UnixSocket.connect(path: path)
            _ = close(fd)
            throw ControlSocketError.inUse(path: path)
        } catch WireError.system(_, let code) where code == ECONNREFUSED {
            guard unlink(path) == 0 || errno == ENOENT else {
                throw ControlSocketError.system(call: "unlink", path: path, errno: errno)
            }
        } catch WireError.system(let call, let code) {
            throw ControlSocketError.system(call: call, path: path, errno: code)
        } catch WireError.pathTooLong {
            throw ControlSocketError.pathTooLong(path: path)
        }
    }
}
