#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ControlProtocol

/// Why a file could not be submitted; ``exitCode`` follows sysexits(3).
public enum SubmitError: Error, Equatable, CustomStringConvertible {
    /// The job file does not exist or cannot be read (66).
    case missing(file: String, reason: String)
    /// The job file is not a regular file, or too large (65).
    case badFile(file: String, reason: String)
    /// The inbox refused the copy: permission (77, naming the inbox's group) or another error (73).
    case inbox(path: String, errno: Int32, group: String?)

    public var description: String {
        switch self {
        case .missing(let file, let reason): return "\(file): \(reason)"
        case .badFile(let file, let reason): return "\(file): \(reason)"
        case .inbox(let path, let code, let group):
            var text = "cannot write into the inbox \(path): \(String(cString: strerror(code)))"
            if code == EACCES || code == EPERM { text += "; " + AccessAdvice.text(group: group, path: "the inbox") }
            return text
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .missing: return SysExits.noInput
        case .badFile: return SysExits.dataError
        case .inbox(_, let code, _): return code == EACCES || code == EPERM ? SysExits.noPermission : SysExits.cantCreate
        }
    }
}

/// Copies job files into the daemon's inbox the way the intake expects: written under a
/// dot-name with a `.part` suffix (which the intake ignores), fsynced, then renamed to its
/// final name in one step, so the daemon never sees half a file.
public enum JobSubmission {
    /// Largest job file the client copies (the daemon applies its own, usually smaller, cap).
    public static let maxFileBytes = 1 << 20

    /// A job file as placed in the inbox.
    public struct Placed: Equatable, Sendable {
        /// Its path in the inbox.
        public var path: String
        /// Its inode number, which the daemon reports with the intake's outcome.
        public var inode: UInt64?
    }

    /// Copies `file` into `inbox`; returns the path it was given there.
    /// The final name is the file's base name, or `stem-N.ext` if that is taken.
    public static func submit(file: String, inbox: String) throws -> String {
        try place(file: file, inbox: inbox).path
    }

    /// ``submit(file:inbox:)``, also returning the copy's inode number.
    public static func place(file: String, inbox: String) throws -> Placed {
        let content = try readJobFile(file)
        let base = (file as NSString).lastPathComponent
        let temporary = inbox + "/.\(base).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).part"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard fd >= 0 else { throw inboxError(inbox, errno) }
        var failure: Int32 = 0
        content.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count, let base = raw.baseAddress {
                let n = write(fd, base + offset, raw.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { failure = n < 0 ? errno : EIO; return }
            }
        }
        if failure == 0 && fchmod(fd, 0o640) != 0 { failure = errno }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        var info = stat()
        let inode = fstat(fd, &info) == 0 ? UInt64(info.st_ino) : nil
        if close(fd) != 0 && failure == 0 { failure = errno }
        guard failure == 0 else {
            _ = unlink(temporary)
            throw inboxError(inbox, failure)
        }
        let ext = (base as NSString).pathExtension
        let stem = (base as NSString).deletingPathExtension
        for attempt in 1...1000 {
            let name = attempt == 1 ? base : (ext.isEmpty ? "\(stem)-\(attempt)" : "\(stem)-\(attempt).\(ext)")
            let destination = inbox + "/" + name
            if lstat(destination, &info) == 0 { continue }
            guard rename(temporary, destination) == 0 else {
                let code = errno
                _ = unlink(temporary)
                throw inboxError(inbox, code)
            }
            return Placed(path: destination, inode: inode)
        }
        _ = unlink(temporary)
        throw inboxError(inbox, EEXIST)
    }

    private static func readJobFile(_ file: String) throws -> Data {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SubmitError.missing(file: file, reason: String(cString: strerror(errno))) }
        defer { _ = close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SubmitError.missing(file: file, reason: String(cString: strerror(errno))) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw SubmitError.badFile(file: file, reason: "not a regular file") }
        guard info.st_size <= maxFileBytes else {
            throw SubmitError.badFile(file: file, reason: "\(info.st_size) bytes; job files are at most \(maxFileBytes) bytes")
        }
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                data.append(contentsOf: chunk[0..<n])
                if data.count > maxFileBytes { throw SubmitError.badFile(file: file, reason: "larger than \(maxFileBytes) bytes") }
            } else if n == 0 {
                return data
            } else if errno != EINTR {
                throw SubmitError.missing(file: file, reason: String(cString: strerror(errno)))
            }
        }
    }

    private static func inboxError(_ inbox: String, _ code: Int32) -> SubmitError {
        var info = stat()
        let group = stat(inbox, &info) == 0 ? AccountNames.groupName(info.st_gid) : nil
        return .inbox(path: inbox, errno: code, group: group)
    }
}
