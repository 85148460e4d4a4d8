import Foundation

extension CLIPTokenizer {
    /// Loads `vocab.json`, `merges.txt` and `tokenizer_config.json` (falling back to
    /// `special_tokens_map.json`) from a diffusers `tokenizer/` folder. A folder saved by
    /// transformers 5 holds `tokenizer.json` (the `tokenizers` library's file) instead of
    /// `vocab.json` + `merges.txt`: its BPE model's vocabulary and merges are read, and its
    /// `added_tokens` are honoured like `added_tokens_decoder`. Special tokens may be
    /// plain strings or `{"content": …, "normalized": …}` objects; `added_tokens_decoder`
    /// entries are honoured as transformers does. `configDirectory` (default: `directory`)
    /// is where the two JSON config files are read from. `defaultPadToken` is the pad token
    /// when neither config file names one (a bare vocabulary, as shipped for single-file
    /// checkpoints, whose family decides it: SD 1.x `<|endoftext|>`, SD 2.x `!`).
    public init(directory: URL, configDirectory: URL? = nil, defaultPadToken: String = "<|endoftext|>") throws {
        var vocabURL = directory.appendingPathComponent("vocab.json")
        let mergesURL = directory.appendingPathComponent("merges.txt")
        let tokenizerJSONURL = directory.appendingPathComponent("tokenizer.json")
        let vocab: [String: Int]
        let merges: [(String, String)]
        var extra: [AddedToken] = []
        let hasClassicFiles = FileManager.default.fileExists(atPath: vocabURL.path)
            || FileManager.default.fileExists(atPath: mergesURL.path)
        let hasTokenizerJSON = FileManager.default.fileExists(atPath: tokenizerJSONURL.path)
        guard hasClassicFiles || hasTokenizerJSON else {
            throw TokenizerError.cannotRead(file: directory.path, reason: "no vocab.json + merges.txt and no tokenizer.json: not a CLIP tokenizer folder")
        }
        if !hasClassicFiles {
            let fast = try TokenizerJSON(url: tokenizerJSONURL)
            vocab = fast.vocab
            merges = fast.merges
            extra = fast.addedTokens
            vocabURL = tokenizerJSONURL
        } else {
            vocab = try CLIPTokenizer.readVocab(vocabURL)
            merges = try CLIPTokenizer.readMerges(mergesURL)
        }

        var settings: [String: Any] = [:]
        for name in ["special_tokens_map.json", "tokenizer_config.json"] {
            let url = (configDirectory ?? directory).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            let json = try ConfigJSON(url: url)
            for (k, v) in json.object where !(v is NSNull) { settings[k] = v }
        }
        func token(_ key: String, default d: String) -> (String, Bool?) {
            if let s = settings[key] as? String { return (s, nil) }
            if let o = settings[key] as? [String: Any], let s = o["content"] as? String { return (s, o["normalized"] as? Bool) }
            return (d, nil)
        }
        let bos = token("bos_token", default: "<|startoftext|>")
        let eos = token("eos_token", default: "<|endoftext|>")
        let unk = token("unk_token", default: "<|endoftext|>")
        let pad = token("pad_token", default: defaultPadToken)
        if let decoder = settings["added_tokens_decoder"] as? [String: Any] {
            for (idString, value) in decoder.sorted(by: { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }) {
                guard let id = Int(idString), let o = value as? [String: Any], let content = o["content"] as? String else { continue }
                extra.removeAll { $0.id == id }
                extra.append(AddedToken(content: content, id: id, normalized: o["normalized"] as? Bool ?? false))
            }
        }
        var maxLength = 77
        if let n = settings["model_max_length"] as? NSNumber, n.doubleValue >= 2, n.doubleValue <= 1_000_000 {
            maxLength = n.intValue
        }
        try self.init(vocab: vocab, merges: merges, bosToken: bos.0, eosToken: eos.0, padToken: pad.0,
                      unkToken: unk.0, padTokenNormalized: pad.1 ?? false, extraAddedTokens: extra,
                      maxLength: maxLength, file: vocabURL.path)
    }

    static func readVocab(_ url: URL) throws -> [String: Int] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.cannotRead(file: url.path, reason: error.localizedDescription)
        }
        guard let any = try? JSONSerialization.jsonObject(with: data, options: []), let dict = any as? [String: Any] else {
            throw TokenizerError.invalidVocab(file: url.path, reason: "not a JSON object of token → id")
        }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(dict.count)
        for (k, v) in dict {
            guard let n = v as? NSNumber, n.intValue >= 0 else {
                throw TokenizerError.invalidVocab(file: url.path, reason: "token '\(k)' has a non-integer id")
            }
            vocab[k] = n.intValue
        }
        return vocab
    }

    static func readMerges(_ url: URL) throws -> [(String, String)] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw TokenizerError.cannotRead(file: url.path, reason: error.localizedDescription)
        }
        var merges: [(String, String)] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let l = line.hasSuffix("\r") ? line.dropLast() : line
            if l.isEmpty || (n == 0 && l.hasPrefix("#version")) { continue }
            let parts = l.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError.invalidMerge(file: url.path, line: n + 1, text: String(l))
            }
            merges.append((String(parts[0]), String(parts[1])))
        }
        return merges
    }
}
