#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ControlProtocol

/// Where `diffusionctl` writes: stdout/stderr in the executable, buffers in tests.
public struct CtlOutput {
    public var out: (String) -> Void
    public var err: (String) -> Void
    /// Whether stdout is a terminal (watch redraws one line in place).
    public var isTerminal: Bool

    public init(out: @escaping (String) -> Void, err: @escaping (String) -> Void, isTerminal: Bool) {
        self.out = out
        self.err = err
        self.isTerminal = isTerminal
    }

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
        if let data = try? WireCodec.encodePretty(value) { out(String(decoding: data, as: UTF8.self) + "\n") }
    }

    /// Compact JSON on one line (watch streams).
    func printJSONLine<T: Encodable>(_ value: T) {
        if let data = try? WireCodec.encodeLine(value) { out(String(decoding: data, as: UTF8.self)) }
    }
}
