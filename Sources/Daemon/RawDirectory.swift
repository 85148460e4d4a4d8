import ControlProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A file name as the kernel gives it: any bytes but `/` and NUL, not necessarily UTF-8.
/// `text` is how the daemon names it everywhere else (``PrintableText/fileName(_:)``: the
/// name itself when it is UTF-8, else with `\xHH` for the bytes that are not).
struct RawName: Hashable {
    let bytes: [UInt8]
    let text: String

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        text = PrintableText.fileName(bytes)
    }

    /// `directory/name` as a C path, for system calls on names that are not UTF-8.
    func path(in directory: String) -> [CChar] {
        (Array(directory.utf8) + [UInt8(ascii: "/")] + bytes + [0]).map { CChar(bitPattern: $0) }
    }
}

/// Lists a directory with readdir(3), keeping names as bytes (Foundation's listing cannot
/// represent a name that is not UTF-8). `.` and `..` are left out; nil if it cannot be opened.
enum RawDirectory {
    static func names(in path: String) -> [RawName]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [RawName] = []
        while let entry = readdir(dir) {
            let bytes = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix(while: { $0 != 0 })) }
            if bytes == [UInt8(ascii: ".")] || bytes == [UInt8(ascii: "."), UInt8(ascii: ".")] { continue }
            names.append(RawName(bytes))
        }
        return names
    }
}
