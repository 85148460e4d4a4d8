#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ControlProtocol

/// Where `diffusionctl` writes: stdout/stderr in the executable, buffers in tests.
///
/// Everything written through `out` and `err` has its control characters escaped
/// (``PrintableText``): prompts, names and errors come from other users and must not drive
/// the terminal. Only `rawOut` (watch's own line redraw) passes control sequences.
public struct CtlOutput {
    /// Writes to stdout as given.
    public var rawOut: (String) -> Void
    /// Writes to stderr as given.
    public var rawErr: (String) -> Void
    /// Whether stdout is a terminal (watch redraws one line in place).
    public var isTerminal: Bool

    public init(out: @escaping (String) -> Void, err: @escaping (String) -> Void, isTerminal: Bool) {
        self.rawOut = out
        self.rawErr = err
        self.isTerminal = isTerminal
    }

    /// Writes `text` to stdout with its control characters (not tab or newline) escaped.
    public var out: (String) -> Void { { [rawOut] in rawOut(PrintableText.escaped($0)) } }
    /// Writes `text` to stderr with its control characters (not tab or newline) escaped.
    public var err: (String) -> Void { { [rawErr] in rawErr(PrintableText.escaped($0)) } }

    /// stdout and stderr of the process, written with write(2).
    public static var standard: CtlOutput {
        CtlOutput(out: { writeAll(1, $0) }, err: { writeAll(2, $0) }, isTerminal: isatty(1) != 0)
    }

    private static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n > 0 { bytes = bytes.dropFirst(n) } else if n < 0 && errno == EINTR { continue } else { return }
        }
    }

    /// Pretty JSON followed by a newline.
    func printJSON<T: Encodable>(_ value: T) {
        if let data = try? WireCodec.encodePretty(value) { rawOut(PrintableText.jsonEscaped(String(decoding: data, as: UTF8.self)) + "\n") }
    }

    /// Compact JSON on one line (watch streams).
    func printJSONLine<T: Encodable>(_ value: T) {
        if let data = try? WireCodec.encodeLine(value) { rawOut(PrintableText.jsonEscaped(String(decoding: data, as: UTF8.self))) }
    }
}
