import ControlProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Logging to stderr with sd-daemon priority prefixes (`<3>` error … `<7>` debug) and no
/// timestamps: journald adds those. One `write(2)` per line, so lines from threads never mix.
/// Control characters in a message (a file name or prompt a user chose) are escaped
/// (``PrintableText``), so a log line never drives the terminal of whoever reads it.
public enum Log {
    public enum Level: Int32, Sendable {
        case error = 3, warning = 4, notice = 5, info = 6, debug = 7
    }

    /// Lines above this level are dropped (set from `DIFFUSIOND_DEBUG`).
    nonisolated(unsafe) public static var maximum: Level = .info

    public static func error(_ message: String) { write(.error, message) }
    public static func warning(_ message: String) { write(.warning, message) }
    public static func notice(_ message: String) { write(.notice, message) }
    public static func info(_ message: String) { write(.info, message) }
    public static func debug(_ message: String) { write(.debug, message) }

    public static func write(_ level: Level, _ message: String) {
        guard level.rawValue <= maximum.rawValue else { return }
        let flat = PrintableText.escaped(message.split(whereSeparator: \.isNewline).joined(separator: " "), keepLayout: false)
        var line = Array("<\(level.rawValue)>\(flat)\n".utf8)
        line.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(2, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                if n <= 0 { if errno == EINTR { continue }; return }
                offset += n
            }
        }
    }
}
