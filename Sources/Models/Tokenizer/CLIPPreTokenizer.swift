import Foundation

/// The text normalization and pre-tokenization of `transformers.CLIPTokenizer` (5.x, backed by
/// the `tokenizers` library; see `models/clip/tokenization_clip.py`):
/// - normalizer: `NFC` → `Replace(\s+, " ")` → `Lowercase` (per code point, no context);
/// - pre-tokenizer: `Split` keeping only the matches of
///   `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
///   (everything else — whitespace — is dropped), then `ByteLevel(add_prefix_space: false)`,
///   whose GPT-2 split never divides these pieces further.
/// Regex alternation is leftmost-first, which the hand-written scanner below reproduces.
enum CLIPPreTokenizer {
    /// NFC, whitespace runs → one space, lower case.
    static func normalize(_ text: String) -> String {
        let nfc = text.precomposedStringWithCanonicalMapping
        var out = String.UnicodeScalarView()
        var inSpace = false
        for s in nfc.unicodeScalars {
            if isSpace(s) {
                if !inSpace { out.append(" ") }
                inSpace = true
                continue
            }
            inSpace = false
            // tokenizers' Lowercase maps each char with Rust's `char::to_lowercase` (full mapping).
            let lower = s.properties.lowercaseMapping
            out.append(contentsOf: lower.unicodeScalars)
        }
        return String(out)
    }

    static func isSpace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    private static let specialWords: [[Unicode.Scalar]] = ["<|startoftext|>", "<|endoftext|>"].map { Array($0.unicodeScalars) }
    private static let contractions: [[Unicode.Scalar]] = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].map { Array($0.unicodeScalars) }

    private static func matches(_ word: [Unicode.Scalar], in text: [Unicode.Scalar], at i: Int) -> Bool {
        guard i + word.count <= text.count else { return false }
        for k in 0..<word.count where text[i + k] != word[k] { return false }
        return true
    }

    /// Splits normalized text into the pieces BPE runs on.
    static func split(_ normalized: String) -> [String] {
        let t = Array(normalized.unicodeScalars)
        var pieces: [String] = []
        var i = 0
        func take(_ end: Int) {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: t[i..<end])
            pieces.append(String(v))
            i = end
        }
        scan: while i < t.count {
            for w in specialWords + contractions where matches(w, in: t, at: i) {
                take(i + w.count)
                continue scan
            }
            let s = t[i]
            if isLetter(s) {
                var j = i + 1
                while j < t.count, isLetter(t[j]) { j += 1 }
                take(j)
            } else if isNumber(s) {
                take(i + 1)
            } else if !isSpace(s) {
                var j = i + 1
                while j < t.count, !isSpace(t[j]), !isLetter(t[j]), !isNumber(t[j]) { j += 1 }
                take(j)
            } else {
                i += 1
            }
        }
        return pieces
    }
}
