import Foundation

/// Errors while loading a tokenizer folder.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case cannotRead(file: String, reason: String)
    case invalidVocab(file: String, reason: String)
    case invalidMerge(file: String, line: Int, text: String)
    case missingToken(file: String, token: String, role: String)

    public var description: String {
        switch self {
        case let .cannotRead(file, reason): return "\(file): cannot read: \(reason)"
        case let .invalidVocab(file, reason): return "\(file): invalid vocabulary: \(reason)"
        case let .invalidMerge(file, line, text): return "\(file):\(line): invalid merge rule '\(text)' (expected two tokens separated by a space)"
        case let .missingToken(file, token, role): return "\(file): \(role) token '\(token)' is not in the vocabulary"
        }
    }
}

/// A special token matched in the raw (or normalized) text before BPE, like an entry of
/// `tokenizers`' added vocabulary.
public struct AddedToken: Sendable, Equatable {
    public var content: String
    public var id: Int
    /// Matched after normalization (`true`) or on the raw text (`false`).
    public var normalized: Bool
}

/// CLIP's byte-level BPE tokenizer, matching `transformers.CLIPTokenizer` (5.x) id for id:
/// special tokens (bos, eos, unk, pad and any in `added_tokens_decoder`) are split out first,
/// then `CLIPPreTokenizer` normalizes and splits, then each piece is byte-level encoded and
/// merged by BPE rank with the `</w>` end-of-word suffix on its last symbol.
/// `encodeForModel` adds `<|startoftext|>` … `<|endoftext|>`, truncates to `maxLength` and
/// pads with the pad token, as diffusers' pipelines call it
/// (`padding="max_length", max_length=77, truncation=True`).
public struct CLIPTokenizer: Sendable {
    public let bosTokenID: Int
    public let eosTokenID: Int
    public let padTokenID: Int
    public let unkTokenID: Int
    /// Sequence length after padding / truncation (`model_max_length`, 77 for SD).
    public let maxLength: Int
    public let addedTokens: [AddedToken]

    let vocab: [String: Int]
    /// (left id, right id) → (rank, merged id), as in `tokenizers`' BPE model.
    private let merges: [Int64: (rank: Int, id: Int)]
    /// Vocabulary id of each byte's character, without and with the `</w>` suffix (-1: absent).
    private let byteIDs: [Int]
    private let byteIDsEndOfWord: [Int]
    /// Lines of `merges.txt` (48 894 for CLIP; 100 for the built-in model's caption vocabulary).
    public let mergeCount: Int

    /// Builds the tokenizer from a vocabulary (`vocab.json`) and merge rules (`merges.txt`,
    /// in rank order). `file` is used in error messages.
    public init(vocab: [String: Int], merges: [(String, String)], bosToken: String = "<|startoftext|>",
                eosToken: String = "<|endoftext|>", padToken: String = "<|endoftext|>",
                unkToken: String = "<|endoftext|>", padTokenNormalized: Bool = false,
                extraAddedTokens: [AddedToken] = [], maxLength: Int = 77, file: String = "vocab.json") throws {
        func id(_ t: String, _ role: String) throws -> Int {
            guard let i = vocab[t] else { throw TokenizerError.missingToken(file: file, token: t, role: role) }
            return i
        }
        bosTokenID = try id(bosToken, "bos")
        eosTokenID = try id(eosToken, "eos")
        padTokenID = try id(padToken, "pad")
        unkTokenID = try id(unkToken, "unk")
        self.maxLength = maxLength
        self.vocab = vocab
        var table: [Int64: (rank: Int, id: Int)] = [:]
        table.reserveCapacity(merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            guard let ia = vocab[a], let ib = vocab[b], let m = vocab[a + b] else { continue }
            let key = Int64(ia) << 32 | Int64(ib)
            if table[key] == nil { table[key] = (rank, m) }
        }
        self.merges = table
        mergeCount = merges.count
        byteIDs = (0..<256).map { vocab[String(ByteLevelAlphabet.scalars[$0])] ?? -1 }
        byteIDsEndOfWord = (0..<256).map { vocab[String(ByteLevelAlphabet.scalars[$0]) + "</w>"] ?? -1 }
        // transformers registers bos/eos/unk as normalized added tokens and a plain-string pad
        // token as a non-normalized one; duplicates keep their first registration.
        var added: [AddedToken] = []
        for t in [AddedToken(content: bosToken, id: bosTokenID, normalized: true),
                  AddedToken(content: eosToken, id: eosTokenID, normalized: true),
                  AddedToken(content: unkToken, id: unkTokenID, normalized: true),
                  AddedToken(content: padToken, id: padTokenID, normalized: padTokenNormalized)] + extraAddedTokens
        where !added.contains(where: { $0.content == t.content }) && !t.content.isEmpty {
            added.append(t)
        }
        addedTokens = added
    }

    /// Ids of `text` without start/end tokens, padding or truncation.
    public func encode(_ text: String) -> [Int] {
        encodeWords(text).flatMap(\.ids)
    }

    /// `text` as the pieces BPE runs on (`CLIPPreTokenizer`'s words, normalized: lower case)
    /// and special tokens, each with its ids; `encode` is their ids in order.
    public func encodeWords(_ text: String) -> [TokenizedWord] {
        var words: [TokenizedWord] = []
        let raw = addedTokens.filter { !$0.normalized }
        let normalizedTokens = addedTokens.filter { $0.normalized }
        func special(_ id: Int) -> TokenizedWord {
            TokenizedWord(text: addedTokens.first { $0.id == id }?.content ?? "", ids: [id], isSpecial: true)
        }
        for rawPart in CLIPTokenizer.splitOnAdded(text, raw) {
            switch rawPart {
            case .token(let id): words.append(special(id))
            case .text(let s):
                for part in CLIPTokenizer.splitOnAdded(CLIPPreTokenizer.normalize(s), normalizedTokens) {
                    switch part {
                    case .token(let id): words.append(special(id))
                    case .text(let n):
                        for piece in CLIPPreTokenizer.split(n) {
                            var ids: [Int] = []
                            bpe(Array(piece.utf8), into: &ids)
                            words.append(TokenizedWord(text: piece, ids: ids, isSpecial: false))
                        }
                    }
                }
            }
        }
        return words
    }

    /// `maxLength` ids: start token, the text's ids truncated to `maxLength − 2`, end token,
    /// then pad tokens.
    public func encodeForModel(_ text: String) -> [Int] {
        var ids = [bosTokenID] + encode(text).prefix(max(0, maxLength - 2)) + [eosTokenID]
        while ids.count < maxLength { ids.append(padTokenID) }
        return ids
    }

    private enum Part { case text(String), token(Int) }

    /// Splits `text` at leftmost-longest occurrences of `tokens` (scalar-wise).
    private static func splitOnAdded(_ text: String, _ tokens: [AddedToken]) -> [Part] {
        guard !tokens.isEmpty else { return [.text(text)] }
        let t = Array(text.unicodeScalars)
        let patterns = tokens.map { (Array($0.content.unicodeScalars), $0.id) }
        var parts: [Part] = []
        var start = 0, i = 0
        func flush(_ end: Int) {
            if end > start {
                var v = String.UnicodeScalarView()
                v.append(contentsOf: t[start..<end])
                parts.append(.text(String(v)))
            }
        }
        while i < t.count {
            var best: (len: Int, id: Int)?
            for (p, id) in patterns where p.count <= t.count - i && (best == nil || p.count > best?.len ?? 0) {
                if t[i..<(i + p.count)].elementsEqual(p) { best = (p.count, id) }
            }
            if let best {
                flush(i)
                parts.append(.token(best.id))
                i += best.len
                start = i
            } else {
                i += 1
            }
        }
        flush(t.count)
        return parts
    }

    /// Byte-level BPE of one pre-token: merge the adjacent pair of lowest rank (leftmost on
    /// ties) until none applies.
    private func bpe(_ bytes: [UInt8], into ids: inout [Int]) {
        guard !bytes.isEmpty else { return }
        var symbols: [Int] = []
        symbols.reserveCapacity(bytes.count)
        for (k, b) in bytes.enumerated() {
            let id = k == bytes.count - 1 ? byteIDsEndOfWord[Int(b)] : byteIDs[Int(b)]
            symbols.append(id >= 0 ? id : unkTokenID)
        }
        while symbols.count > 1 {
            var bestRank = Int.max, bestPos = -1, bestID = 0
            for p in 0..<(symbols.count - 1) {
                let key = Int64(symbols[p]) << 32 | Int64(symbols[p + 1])
                if let m = merges[key], m.rank < bestRank { bestRank = m.rank; bestPos = p; bestID = m.id }
            }
            guard bestPos >= 0 else { break }
            symbols[bestPos] = bestID
            symbols.remove(at: bestPos + 1)
        }
        ids.append(contentsOf: symbols)
    }

    /// Id of a vocabulary entry, if present.
    public func id(of token: String) -> Int? { vocab[token] }
}
