/// GPT-2 / CLIP `bytes_to_unicode`: a reversible map from the 256 byte values to printable
/// Unicode characters, so BPE can work on strings without whitespace or control characters.
/// Printable Latin-1 bytes (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) map to themselves; the other 68 bytes
/// map, in increasing order, to U+0100, U+0101, ….
enum ByteLevelAlphabet {
    /// `scalars[b]` is the character standing for byte `b`.
    static let scalars: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            let code: UInt32 = printable ? UInt32(b) : { defer { next += 1 }; return next }()
            table[b] = Unicode.Scalar(code) ?? " "
        }
        return table
    }()

    /// The byte-level string of `bytes`.
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(scalars[Int(b)]) }
        return String(s)
    }
}
