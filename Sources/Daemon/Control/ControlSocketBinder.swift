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
    /// The socket's directory belongs to someone else and anyone may write in it: another
    /// user could replace the socket. The daemon refuses to start (exit 73).
    case unsafeDirectory(path: String, owner: UInt32, mode: UInt32)

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
        case .unsafeDirectory(let path, let owner, let mode):
            return "\(path): the control socket's directory belongs to uid \(owner), not to this daemon (uid \(geteuid())), "
                + "and is world-writable (mode \(String(mode, radix: 8))): another user could replace the socket; "
                + "set `socket:` to a path in a directory of the daemon's own (it is created with mode 0750 if missing)"
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

    /// The socket's directory, `.` for a bare name.
    static func directory(of path: String) -> String {
        (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
    }

    /// Refuses a directory that belongs to another uid and is world-writable (``ControlSocketError/unsafeDirectory``);
    /// a missing one is fine (it will be created).
    public static func checkDirectory(of path: String) throws {
        let directory = directory(of: path)
        var info = stat()
        guard stat(directory, &info) == 0 else { return }
        if info.st_uid != geteuid(), info.st_mode & 0o002 != 0 {
            throw ControlSocketError.unsafeDirectory(path: directory, owner: info.st_uid, mode: UInt32(info.st_mode & 0o7777))
        }
    }

    /// Creates the socket's directory (mode 0750) if missing. An existing directory is never
    /// changed (it is not the daemon's to change): one of another user's that anyone may
    /// write in is refused, a world-accessible one is only warned about.
    static func prepareDirectory(of path: String, log: (Int32, String) -> Void) throws {
        let directory = directory(of: path)
        var info = stat()
        if stat(directory, &info) != 0 {
            guard errno == ENOENT else { throw ControlSocketError.system(call: "stat", path: directory, errno: errno) }
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o750])
            } catch {
                throw ControlSocketError.system(call: "mkdir", path: directory, errno: EACCES)
            }
            // Created now, so ours to set: the umask may have taken bits but never adds any.
            return
        }
        try checkDirectory(of: path)
        let mode = info.st_mode & 0o7777
        if mode & 0o007 != 0 {
            log(4, "\(directory): world-accessible (mode \(String(mode, radix: 8))); any local user can reach the control socket")
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
