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
public enum AtomicFile {
    private static let counter = Counter()

    /// Writes `bytes` to `url` atomically with mode `mode`.
    public static func write(_ bytes: [UInt8], to url: URL, mode: mode_t = 0o644) throws {
        let dir = url.deletingLastPathComponent().path
        let temp = dir + "/." + FileNames.shortened(url.lastPathComponent, toBytes: FileNames.temporaryBytes)
            + ".tmp-\(getpid())-\(counter.next())"
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
