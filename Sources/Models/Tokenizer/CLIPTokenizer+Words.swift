import Foundation

/// One piece of a tokenized text: a word as `CLIPPreTokenizer` splits it (normalized, so in
/// lower case) or a special token, with the ids BPE gave it.
public struct TokenizedWord: Sendable, Equatable {
    /// The piece as BPE saw it (normalized text), or the special token's text.
    public var text: String
    /// Its ids, in order (one for a special token).
    public var ids: [Int]
    /// A special token matched before BPE (`<|startoftext|>`, `<|endoftext|>`, …).
    public var isSpecial: Bool

    /// A piece and its ids.
    public init(text: String, ids: [Int], isSpecial: Bool) {
        self.text = text
        self.ids = ids
        self.isSpecial = isSpecial
    }
}

/// What a tokenizer can tell about words a model may not know.
///
/// `CLIPTokenizer` never drops text: byte-level BPE starts from one symbol per UTF-8 byte,
/// and a byte whose character has no vocabulary entry becomes `unk_token`'s id (for Stable
/// Diffusion's tokenizers that is `<|endoftext|>`, so the text encoder reads it as the end of
/// the text). A full CLIP vocabulary holds all 256 byte characters (with and without `</w>`),
/// so there every word is representable: rare words are spelled from sub-word pieces the model
/// has learned. A small vocabulary built from a caption set (the built-in `models/shapes`: the
/// 512 byte characters, 100 merges, 2 specials = 614 entries) also spells any word, but only
/// the captions' words come out as one entry; any other word ("dragon" →
/// `d r a g on</w>`) is a string of pieces the model never saw in training.
extension CLIPTokenizer {
    /// Vocabularies with at most this many merges are treated as caption vocabularies, whose
    /// known words are exactly their single entries (see `isUnknown`).
    public static let smallVocabularyMerges = 4_096

    /// Whether the merges are few enough (≤ `smallVocabularyMerges`) that only whole-word
    /// entries stand for words the model was trained on (the built-in model: 100; CLIP: 48 894).
    public var hasSmallVocabulary: Bool { mergeCount <= CLIPTokenizer.smallVocabularyMerges }

    /// Whether the model cannot know `word`: it holds a byte without a vocabulary entry (BPE
    /// gave the unk id), or, for a small vocabulary, BPE could not make it one entry.
    /// Special tokens are never unknown.
    public func isUnknown(_ word: TokenizedWord) -> Bool {
        guard !word.isSpecial else { return false }
        if word.ids.contains(unkTokenID) { return true }
        return hasSmallVocabulary && word.ids.count > 1
    }

    /// The distinct words of `text` the model cannot know (`isUnknown`), in first-seen order.
    public func unknownWords(in text: String) -> [String] {
        var seen = Set<String>(), words: [String] = []
        for word in encodeWords(text) where isUnknown(word) && seen.insert(word.text).inserted {
            words.append(word.text)
        }
        return words
    }

    /// The text of `ids` as `transformers.CLIPTokenizer.decode` gives it with
    /// `skip_special_tokens=False`: entries joined, `</w>` read as a space, byte-level
    /// characters turned back into UTF-8 (invalid sequences replaced), ends trimmed.
    /// Ids outside the vocabulary are skipped.
    public func decode(_ ids: [Int]) -> String {
        let entries = Dictionary(vocab.map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let bytesOf = Dictionary(ByteLevelAlphabet.scalars.enumerated().map { ($1, UInt8($0)) },
                                 uniquingKeysWith: { first, _ in first })
        var bytes: [UInt8] = []
        for id in ids {
            guard let entry = entries[id] else { continue }
            let isWordEnd = entry.hasSuffix("</w>")
            let body = isWordEnd ? String(entry.dropLast(4)) : entry
            for scalar in body.unicodeScalars {
                if let b = bytesOf[scalar] { bytes.append(b) } else { bytes.append(contentsOf: Array(String(scalar).utf8)) }
            }
            if isWordEnd { bytes.append(0x20) }
        }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces)
    }
}
