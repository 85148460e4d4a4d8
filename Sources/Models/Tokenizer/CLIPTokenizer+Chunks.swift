/// AUTOMATIC1111's long-prompt chunking (`modules/sd_hijack_clip.py`,
/// `FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line`), without its emphasis weights,
/// `BREAK` keyword and textual-inversion embeddings: the prompt's ids (no start/end tokens)
/// are cut into chunks of `maxLength − 2` (75) ids; when a chunk is full and the next id is
/// not a comma, the ids after the chunk's last comma move to the next chunk if that comma is
/// within the chunk's last `commaBacktrack` ids (the web UI's "comma padding backtrack",
/// default 20). Each chunk is then wrapped like a whole prompt (`chunkIDs`).
extension CLIPTokenizer {
    /// AUTOMATIC1111's default `comma_padding_backtrack`.
    public static let defaultCommaBacktrack = 20

    /// Prompt ids per chunk: at most `maxLength − 2`.
    public var chunkLength: Int { max(1, maxLength - 2) }

    /// `ids` (a prompt's, from `encode`) cut into chunks of at most `chunkLength` ids, breaking
    /// after a comma (`,</w>`) near the end of a full chunk as described above. An empty
    /// prompt is one empty chunk.
    public func chunks(_ ids: [Int], commaBacktrack: Int = CLIPTokenizer.defaultCommaBacktrack) -> [[Int]] {
        let comma = vocab[",</w>"]
        var chunks: [[Int]] = []
        var chunk: [Int] = []
        var lastComma = -1
        for id in ids {
            if id == comma {
                lastComma = chunk.count
            } else if commaBacktrack != 0, chunk.count == chunkLength, lastComma != -1,
                      chunk.count - lastComma <= commaBacktrack {
                let moved = Array(chunk[(lastComma + 1)...])
                chunks.append(Array(chunk[...lastComma]))
                chunk = moved
                lastComma = -1
            }
            if chunk.count == chunkLength {
                chunks.append(chunk)
                chunk = []
                lastComma = -1
            }
            chunk.append(id)
        }
        if !chunk.isEmpty || chunks.isEmpty { chunks.append(chunk) }
        return chunks
    }

    /// `maxLength` ids for one chunk: start token, the chunk's ids, end token, pad tokens —
    /// what `encodeForModel` gives for a prompt of these ids (AUTOMATIC1111 pads with the end
    /// token and, where pad differs from it as in SD 2.x, turns what follows the first end
    /// token into pad tokens: the same ids).
    public func chunkIDs(_ chunk: [Int]) -> [Int] {
        var ids = [bosTokenID] + chunk.prefix(chunkLength) + [eosTokenID]
        while ids.count < maxLength { ids.append(padTokenID) }
        return ids
    }
}
