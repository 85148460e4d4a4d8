import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file-system operation that failed, with the path and the system's reason.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var path: String
    public var code: Int32
    public init(_ operation: String, _ path: String, code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }
    public var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}

/// Crash-safe file writing: a reader never sees half a file. Each write goes to a hidden
/// temporary name in the same directory, is fsynced, renamed over the final name, and the
/// directory is fsynced so the rename itself survives a power cut.
///
/// Temporary names are `.<name>.tmp-<host>-<pid>-<n>`: unique across the hosts that share a
/// folder (`--oneshot --shard` tasks on NFS), and they say who wrote them, so a later run can
/// tell a dead writer's leftovers (``isAbandoned(_:in:)``) from a live one's.
public enum AtomicFile {
    private static let counter = Counter()

    /// This host's name as temporary names carry it: letters, digits, `.` and `_` only.
    public static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let safe = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == ".") ? $0 : "_" })
        // At most 24 bytes, so a temporary name stays within NAME_MAX (FileNames.temporaryBytes).
        return safe.isEmpty ? "localhost" : String(safe.prefix(24))
    }()

    /// Writes `bytes` to `url` atomically with mode `mode`.
    public static func write(_ bytes: [UInt8], to url: URL, mode: mode_t = 0o644) throws {
        let dir = url.deletingLastPathComponent().path
        let temp = dir + "/." + FileNames.shortened(url.lastPathComponent, toBytes: FileNames.temporaryBytes)
            + ".tmp-\(hostName)-\(getpid())-\(counter.next())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw FileError("create", temp) }
        var ok = false
        defer { if !ok { unlink(temp) } }
        do {
            defer { close(fd) }
            try bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = Glibc.write(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw FileError("write", temp)
                    }
                    offset += n
                }
            }
            guard fsync(fd) == 0 else { throw FileError("fsync", temp) }
        }
        guard rename(temp, url.path) == 0 else { throw FileError("rename to", url.path) }
        ok = true
        try syncDirectory(dir)
    }

    /// Writes UTF-8 text atomically.
    public static func write(_ text: String, to url: URL) throws {
        try write(Array(text.utf8), to: url)
    }

    /// fsyncs a directory so renames and creations in it are durable.
    public static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError("open directory", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw FileError("fsync directory", path) }
    }

    /// `mkdir -p` that also fsyncs the parent of every directory it creates.
    public static func makeDirectory(_ url: URL, mode: mode_t = 0o755) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue { return }
        let parent = url.deletingLastPathComponent()
        if parent.path != url.path { try makeDirectory(parent, mode: mode) }
        if mkdir(url.path, mode) != 0 && errno != EEXIST { throw FileError("create directory", url.path) }
        try syncDirectory(parent.path)
    }

    /// True for names of this type's temporary files.
    public static func isTemporaryName(_ name: String) -> Bool {
        name.hasPrefix(".") && name.contains(".tmp-")
    }

    /// The host and process that made temporary file `name`; `nil` for another name, or for
    /// one written before temporary names carried the host (`.<name>.tmp-<pid>-<n>`).
    public static func temporaryWriter(_ name: String) -> (host: String, pid: pid_t)? {
        guard isTemporaryName(name), let range = name.range(of: ".tmp-", options: .backwards) else { return nil }
        let parts = name[range.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 3, let pid = pid_t(parts[parts.count - 2]), Int(parts[parts.count - 1]) != nil else { return nil }
        return (parts.dropLast(2).joined(separator: "-"), pid)
    }

    /// How old a temporary file of another host must be before it counts as abandoned: a
    /// write is one buffer and an fsync, seconds at most, so an hour leaves room for clocks
    /// that disagree.
    public static let abandonedAfter: Double = 3600

    /// True when temporary file `name` in `directory` can no longer become a file: its writer
    /// was a process of this host that is gone, or it is older than ``abandonedAfter`` (a
    /// writer on another host, whose processes this one cannot see). Removing such a file
    /// never breaks a live write; this is what a shared (NFS) folder allows instead of locks.
    public static func isAbandoned(_ name: String, in directory: URL, now: Double = Date().timeIntervalSince1970) -> Bool {
        guard isTemporaryName(name) else { return false }
        if let writer = temporaryWriter(name), writer.host == hostName {
            return kill(writer.pid, 0) != 0 && errno == ESRCH
        }
        var st = stat()
        guard lstat(directory.appendingPathComponent(name).path, &st) == 0 else { return false }
        return now - Double(st.st_mtim.tv_sec) > abandonedAfter
    }

    private final class Counter: @unchecked Sendable {
        private var value = 0
        private let lock = NSLock()
        func next() -> Int {
            lock.lock()
            defer { lock.unlock() }
            value += 1
            return value
        }
    }
}
