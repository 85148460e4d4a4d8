/// Control characters in user-supplied text (prompts, names, file names): the one definition
/// the job parser (which refuses them), the daemon's log and `diffusionctl` (which escape
/// them) share, so that nothing a user wrote can drive the terminal of whoever reads it
/// (clear screen, set title, OSC 52 clipboard writes).
///
/// A control character is C0 (U+0000–U+001F) other than tab and newline, DEL (U+007F), or
/// C1 (U+0080–U+009F).
public enum PrintableText {
    /// Whether `scalar` is a control character as defined above.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v == 0x09 || v == 0x0A { return false }
        return v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v)
    }

    /// Whether `scalar` would not show as itself on a terminal: a control character, a line
    /// or paragraph separator, a format character (bidirectional overrides that reorder what
    /// follows, the byte-order mark …; not the zero-width joiners emoji sequences use), or an
    /// unassigned, private-use or surrogate code point. What ``escaped(_:keepLayout:)`` escapes.
    public static func isNonPrintable(_ scalar: Unicode.Scalar) -> Bool {
        if isControl(scalar) { return true }
        switch scalar.properties.generalCategory {
        case .lineSeparator, .paragraphSeparator, .unassigned, .privateUse, .surrogate: return true
        case .format: return !(0x200C...0x200D).contains(scalar.value)
        default: return false
        }
    }

    /// The first control character of `text`, with its 1-based position counted in
    /// characters (Unicode scalars), or nil.
    public static func firstControl(in text: String) -> (position: Int, scalar: Unicode.Scalar)? {
        for (k, scalar) in text.unicodeScalars.enumerated() where isControl(scalar) { return (k + 1, scalar) }
        return nil
    }

    /// `U+001B (ESC)` style name of a control character for error messages.
    public static func describe(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        let names: [UInt32: String] = [0x00: "NUL", 0x07: "BEL", 0x08: "BS", 0x0B: "VT", 0x0C: "FF", 0x0D: "CR",
                                       0x1B: "ESC", 0x7F: "DEL", 0x9B: "CSI", 0x9D: "OSC"]
        return names[scalar.value].map { "\(code) (\($0))" } ?? code
    }

    /// `text` with every non-printable character (``isNonPrintable(_:)``) written as
    /// `\u{1B}`-style text (also tab and newline unless `keepLayout`), safe to print to a
    /// terminal or a log line.
    public static func escaped(_ text: String, keepLayout: Bool = true) -> String {
        func escapes(_ scalar: Unicode.Scalar) -> Bool {
            (scalar == "\t" || scalar == "\n") ? !keepLayout : isNonPrintable(scalar)
        }
        guard text.unicodeScalars.contains(where: escapes) else { return text }
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if escapes(scalar) {
                result.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            } else {
                result.append(scalar)
            }
        }
        return String(result)
    }

    /// JSON text with the non-printable characters JSON leaves raw (DEL, C1, bidirectional
    /// overrides …; C0 is always escaped by the encoder) written as `\uXXXX` escapes: the
    /// same JSON value, safe to print.
    public static func jsonEscaped(_ json: String) -> String {
        func escapes(_ scalar: Unicode.Scalar) -> Bool { scalar.value <= 0xFFFF && isNonPrintable(scalar) }
        guard json.unicodeScalars.contains(where: escapes) else { return json }
        var result = String.UnicodeScalarView()
        for scalar in json.unicodeScalars {
            if escapes(scalar) {
                let hex = String(scalar.value, radix: 16)
                result.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
            } else {
                result.append(scalar)
            }
        }
        return String(result)
    }

    /// A file name's bytes as text: valid UTF-8 stays as it is (control characters included,
    /// so the name can be checked), every byte that is not part of valid UTF-8 becomes `\xHH`.
    public static func fileName(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var result = ""
        var i = 0
        while i < bytes.count {
            let length = utf8Length(bytes, at: i)
            if length > 0, let piece = String(validating: bytes[i..<(i + length)], as: UTF8.self) {
                result += piece
                i += length
            } else {
                result += "\\x" + (bytes[i] < 0x10 ? "0" : "") + String(bytes[i], radix: 16)
                i += 1
            }
        }
        return result
    }

    /// Length of the UTF-8 sequence a lead byte announces (0: not a lead byte, or cut short).
    private static func utf8Length(_ bytes: [UInt8], at i: Int) -> Int {
        let b = bytes[i]
        let length = b < 0x80 ? 1 : b & 0xE0 == 0xC0 ? 2 : b & 0xF0 == 0xE0 ? 3 : b & 0xF8 == 0xF0 ? 4 : 0
        return i + length <= bytes.count ? length : 0
    }
}
