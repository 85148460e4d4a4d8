import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why an input file a job names was refused: the file and the reason, one line.
public struct InputRefusal: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}

/// Opens the files a job names (`init_image`, `init_images`) on behalf of the job's owner,
/// so that nothing in a job makes the daemon read what its owner could not:
///
/// - the path is absolute and walked from `/` one name at a time with `openat(…, O_NOFOLLOW)`:
///   no symbolic link anywhere in it, no `..`;
/// - every folder on the way must be searchable by the owner (owner's uid with `u+x`, or `o+x`);
/// - the file itself must be a regular file (devices, FIFOs and sockets are refused from
///   `fstatat` before anything opens them) readable by the owner (owner's uid with `u+r`, or
///   world-readable `o+r`), checked with `fstat` on the descriptor that is then read;
/// - a folder to list must be readable and searchable by the owner the same way.
///
/// Group permissions do not count (the daemon cannot know a uid's groups as the kernel
/// would); uid 0 may read everything. Sizes are capped (`maxBytes`, and `maxPixels` from the
/// picture's header before it is decoded).
public struct InputFileAccess: Sendable {
    /// uid of the job file's owner.
    public var owner: UInt32
    /// Largest input file, bytes (`max_input_bytes`).
    public var maxBytes: Int
    /// Most pixels of an input picture (`max_input_pixels`).
    public var maxPixels: Int

    public init(owner: UInt32, maxBytes: Int, maxPixels: Int) {
        self.owner = owner
        self.maxBytes = maxBytes
        self.maxPixels = maxPixels
    }

    /// Whether the owner may do what `userBits` / `otherBits` of `st`'s mode allow.
    private func owner(may st: stat, user userBits: mode_t, other otherBits: mode_t) -> Bool {
        owner == 0 || (st.st_uid == owner && st.st_mode & userBits == userBits) || st.st_mode & otherBits == otherBits
    }

    /// Opens `path` (a regular file, or a folder when `folder`) after the checks above and
    /// returns its descriptor and `fstat`.
    private func open(_ path: String, folder: Bool) throws -> (Int32, stat) {
        func refuse(_ reason: String) -> InputRefusal { InputRefusal(path: path, reason: reason) }
        guard path.hasPrefix("/") else { throw refuse("is not an absolute path") }
        let names = path.split(separator: "/").map(String.init).filter { $0 != "." }
        guard !names.contains("..") else { throw refuse("contains '..'; name the file by its own path") }
        var fd = Glibc.open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw refuse("cannot open /: \(String(cString: strerror(errno)))") }
        var walked = ""
        for (i, name) in names.enumerated() {
            var st = stat()
            guard fstat(fd, &st) == 0 else { close(fd); throw refuse("cannot examine \(walked.isEmpty ? "/" : walked)") }
            guard self.owner(may: st, user: S_IXUSR, other: S_IXOTH) else {
                close(fd)
                throw refuse("its owner (uid \(owner)) may not enter the folder \(walked.isEmpty ? "/" : walked)")
            }
            let last = i == names.count - 1
            walked += "/" + name
            // The kind first, without opening (opening a device can have effects of its own).
            guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                let why = errno == ENOENT ? "does not exist" : String(cString: strerror(errno))
                close(fd)
                throw refuse(last ? why : "\(walked) \(why)")
            }
            let kind = st.st_mode & S_IFMT
            if kind == S_IFLNK {
                close(fd)
                throw refuse(last ? "is a symbolic link; name the file itself" : "\(walked) is a symbolic link; name the real path")
            }
            if !last || folder {
                guard kind == S_IFDIR else { close(fd); throw refuse(last ? "is not a folder" : "\(walked) is not a folder") }
            } else {
                guard kind == S_IFREG else { close(fd); throw refuse("is \(InputFileAccess.kind(st.st_mode)), not a regular file") }
            }
            let flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (last && !folder ? 0 : O_DIRECTORY)
            let next = openat(fd, name, flags)
            let openError = errno
            close(fd)
            guard next >= 0 else {
                throw refuse(openError == ELOOP ? "\(walked) is a symbolic link" : "cannot be opened: \(String(cString: strerror(openError)))")
            }
            fd = next
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else { close(fd); throw refuse("cannot be examined: \(String(cString: strerror(errno)))") }
        if folder {
            guard st.st_mode & S_IFMT == S_IFDIR else { close(fd); throw refuse("is not a folder") }
            guard owner(may: st, user: S_IRUSR | S_IXUSR, other: S_IROTH | S_IXOTH) else {
                close(fd)
                throw refuse("its owner (uid \(owner)) may not list this folder (owned by uid \(st.st_uid), mode \(String(st.st_mode & 0o7777, radix: 8)))")
            }
        } else {
            guard st.st_mode & S_IFMT == S_IFREG else { close(fd); throw refuse("is \(InputFileAccess.kind(st.st_mode)), not a regular file") }
            guard owner(may: st, user: S_IRUSR, other: S_IROTH) else {
                close(fd)
                throw refuse("the job's owner (uid \(owner)) may not read it (owned by uid \(st.st_uid), mode \(String(st.st_mode & 0o7777, radix: 8)))")
            }
        }
        return (fd, st)
    }

    /// The bytes of the regular file at `path`, at most `maxBytes`.
    public func read(_ path: String) throws -> [UInt8] {
        let (fd, st) = try open(path, folder: false)
        defer { close(fd) }
        guard st.st_size <= maxBytes else {
            throw InputRefusal(path: path, reason: "is \(st.st_size) bytes, more than max_input_bytes (\(maxBytes))")
        }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size) + 1)
        var total = 0
        while total < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress.map { $0 + total }, $0.count - total) }
            if n < 0 {
                if errno == EINTR { continue }
                throw InputRefusal(path: path, reason: "cannot be read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            total += n
        }
        guard total <= maxBytes else { throw InputRefusal(path: path, reason: "grew past max_input_bytes (\(maxBytes)) while read") }
        return Array(bytes.prefix(total))
    }

    /// A picture: read, its format told by its first bytes, its size checked from the header
    /// against `maxPixels`, then decoded once so that a corrupt file is refused now.
    public func picture(_ path: String) throws -> InputPicture {
        let bytes = try read(path)
        guard let format = InputImageFormat.sniff(bytes) else {
            throw InputRefusal(path: path, reason: "is not a PNG or JPEG file")
        }
        let size: (width: Int, height: Int)
        do {
            size = try format.size(bytes)
        } catch {
            throw InputRefusal(path: path, reason: "unreadable \(format.rawValue.uppercased()) header: \(error)")
        }
        guard size.width > 0, size.height > 0 else { throw InputRefusal(path: path, reason: "is an empty picture (\(size.width)×\(size.height))") }
        guard size.width <= maxPixels, size.height <= maxPixels, size.width * size.height <= maxPixels else {
            throw InputRefusal(path: path, reason: "is \(size.width)×\(size.height) pixels, more than max_input_pixels (\(maxPixels))")
        }
        do {
            _ = try format.decode(bytes)
        } catch {
            throw InputRefusal(path: path, reason: "corrupt picture: \(error)")
        }
        return InputPicture(path: path, format: format, bytes: bytes, width: size.width, height: size.height)
    }

    /// The pictures of a folder (`.png`, `.jpg`, `.jpeg`, not hidden), full paths in name order.
    public func folderPictures(_ path: String) throws -> [String] {
        let (fd, _) = try open(path, folder: true)
        guard let directory = fdopendir(fd) else {
            close(fd)
            throw InputRefusal(path: path, reason: "cannot be listed: \(String(cString: strerror(errno)))")
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard !name.hasPrefix("."), let dot = name.lastIndex(of: ".") else { continue }
            if InputImageFormat.folderExtensions.contains(name[name.index(after: dot)...].lowercased()) { names.append(name) }
        }
        guard !names.isEmpty else { throw InputRefusal(path: path, reason: "holds no .png, .jpg or .jpeg file") }
        let base = path.hasSuffix("/") ? String(path.dropLast()) : path
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map { base + "/" + $0 }
    }

    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFDIR: return "a folder"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFLNK: return "a symbolic link"
        default: return "not a plain file"
        }
    }
}

/// An input picture as read at intake: its bytes (kept, then copied into the job's outbox
/// folder) and what its header says.
public struct InputPicture: Sendable {
    public var path: String
    public var format: InputImageFormat
    public var bytes: [UInt8]
    public var width: Int
    public var height: Int
}
