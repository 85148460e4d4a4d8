import Foundation

/// The parts of a `tokenizers` library `tokenizer.json` that a CLIP BPE tokenizer needs:
/// `model.vocab` (token → id), `model.merges` (in rank order; written as `"a b"` strings by
/// tokenizers before 0.20 and as `["a", "b"]` pairs since) and `added_tokens`
/// (`{"id", "content", "normalized", …}`). transformers 5 saves a CLIP tokenizer folder with
/// only this file beside `tokenizer_config.json`.
struct TokenizerJSON {
    let vocab: [String: Int]
    let merges: [(String, String)]
    let addedTokens: [AddedToken]

    init(url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.cannotRead(file: url.path, reason: error.localizedDescription)
        }
        guard let root = (try? JSONSerialization.jsonObject(with: data, options: [])) as? [String: Any] else {
            throw TokenizerError.invalidVocab(file: url.path, reason: "not a JSON object")
        }
        guard let model = root["model"] as? [String: Any] else {
            throw TokenizerError.invalidVocab(file: url.path, reason: "no \"model\" object")
        }
        if let type = model["type"] as? String, type != "BPE" {
            throw TokenizerError.invalidVocab(file: url.path, reason: "model type is \"\(type)\", a CLIP tokenizer is \"BPE\"")
        }
        guard let vocabObject = model["vocab"] as? [String: Any] else {
            throw TokenizerError.invalidVocab(file: url.path, reason: "no \"model.vocab\" object of token → id")
        }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(vocabObject.count)
        for (token, value) in vocabObject {
            guard let number = value as? NSNumber, number.intValue >= 0 else {
                throw TokenizerError.invalidVocab(file: url.path, reason: "model.vocab: token '\(token)' has a non-integer id")
            }
            vocab[token] = number.intValue
        }
        guard let mergeList = model["merges"] as? [Any] else {
            throw TokenizerError.invalidVocab(file: url.path, reason: "no \"model.merges\" list")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeList.count)
        for (index, entry) in mergeList.enumerated() {
            let pair: [String]
            if let text = entry as? String {
                pair = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else if let parts = entry as? [Any] {
                pair = parts.compactMap { $0 as? String }
            } else {
                pair = []
            }
            guard pair.count == 2, !pair[0].isEmpty, !pair[1].isEmpty else {
                throw TokenizerError.invalidMerge(file: url.path, line: index + 1, text: "\(entry)")
            }
            merges.append((pair[0], pair[1]))
        }
        var added: [AddedToken] = []
        for entry in root["added_tokens"] as? [Any] ?? [] {
            guard let object = entry as? [String: Any], let id = (object["id"] as? NSNumber)?.intValue,
                  let content = object["content"] as? String else {
                throw TokenizerError.invalidVocab(file: url.path, reason: "added_tokens: an entry without integer \"id\" and string \"content\"")
            }
            added.append(AddedToken(content: content, id: id, normalized: object["normalized"] as? Bool ?? false))
        }
        self.vocab = vocab
        self.merges = merges
        addedTokens = added
    }
}
