import Foundation
import XCTest
@testable import Models

/// What the tokenizer tells about long prompts and unknown words, and AUTOMATIC1111's
/// chunking of token ids (`CLIPTokenizer+Words`, `CLIPTokenizer+Chunks`).
final class PromptTokenReportTests: XCTestCase {
    static let shapesTokenizer = FixturePaths.root.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("models/shapes/tokenizer")

    /// The real CLIP vocabulary: 8 × "a photo … garden, " is 120 tokens; 45 fall past the 75
    /// the window keeps, and decode as transformers' `CLIPTokenizer.decode` gives them.
    func testLongPromptTokenCountAndDroppedTextWithCLIP() throws {
        let tok = try CLIPTokenizer(directory: FixturePaths.url("tokenizer/clip"))
        let prompt = String(repeating: "a photo of a cat sitting on a red chair in a sunny garden, ", count: 8)
        let ids = tok.encode(prompt)
        XCTAssertEqual(ids.count, 120)
        XCTAssertEqual(tok.chunkLength, 75)
        XCTAssertEqual(Array(tok.encodeForModel(prompt)[1..<76]), Array(ids.prefix(75)), "truncation keeps the first 75")
        let dropped = Array(ids.dropFirst(75))
        XCTAssertEqual(dropped.count, 45)
        XCTAssertEqual(tok.decode(dropped), String(repeating: "a photo of a cat sitting on a red chair in a sunny garden , ", count: 3)
            .trimmingCharacters(in: .whitespaces))
        XCTAssertEqual(tok.decode([320, 1125, 539, 320, 2368]), "a photo of a cat")
        XCTAssertEqual(tok.unknownWords(in: prompt), [], "a full CLIP vocabulary spells every word")
        XCTAssertFalse(tok.hasSmallVocabulary)
        XCTAssertEqual(tok.mergeCount, 48_894)
    }

    /// The built-in model's 614-entry caption vocabulary spells any word from single
    /// characters, so nothing is dropped or unk; words that are not one entry are reported.
    func testUnknownWordsWithTheBuiltInModelsVocabulary() throws {
        let tok = try CLIPTokenizer(directory: Self.shapesTokenizer)
        XCTAssertTrue(tok.hasSmallVocabulary)
        XCTAssertEqual(tok.mergeCount, 100)
        XCTAssertEqual(tok.encode("dragon"), [67, 81, 64, 70, 566], "d r a g on</w>, as transformers gives it")
        XCTAssertEqual(tok.unknownWords(in: "a red circle at the top left on a blue background"), [])
        XCTAssertEqual(tok.unknownWords(in: "A red Dragon and a castle, a red dragon, reds!!"),
                       ["dragon", "castle", "reds", "!!"])
        let words = tok.encodeWords("a dragon <|endoftext|>")
        XCTAssertEqual(words.map(\.text), ["a", "dragon", "<|endoftext|>"])
        XCTAssertEqual(words.map(\.isSpecial), [false, false, true])
        XCTAssertEqual(words.flatMap(\.ids), tok.encode("a dragon <|endoftext|>"))
    }

    /// A byte whose character is not in the vocabulary is not dropped: BPE gives it the unk
    /// id (for SD's tokenizers `<|endoftext|>`), and the word is reported whatever the size.
    func testByteWithoutEntryBecomesUnkAndIsReported() throws {
        var vocab: [String: Int] = ["<|startoftext|>": 0, "<|endoftext|>": 1]
        for c in "abcdefghijklmnopqrstuvwxyz" { vocab[String(c)] = vocab.count; vocab["\(c)</w>"] = vocab.count }
        let tok = try CLIPTokenizer(vocab: vocab, merges: [])
        XCTAssertEqual(tok.encode("ab é"), [vocab["a"], vocab["b</w>"], 1, 1].compactMap { $0 }, "é is two bytes, both unk")
        XCTAssertEqual(tok.unknownWords(in: "ab é"), ["ab", "é"])
        XCTAssertEqual(tok.unknownWords(in: "a b"), [])
    }

    /// AUTOMATIC1111's `tokenize_line`: 75 per chunk, and a full chunk breaks after a comma
    /// that lies within its last 20 ids (ids moved to the next chunk).
    func testChunksBreakAtTheLastCommaWithinTwentyTokens() throws {
        let tok = try CLIPTokenizer(directory: FixturePaths.url("tokenizer/clip"))
        let comma = try XCTUnwrap(tok.id(of: ",</w>"))
        let word = 320
        XCTAssertEqual(tok.chunks([]).map(\.count), [0], "an empty prompt is one empty chunk")
        XCTAssertEqual(tok.chunks(Array(repeating: word, count: 75)).map(\.count), [75])
        XCTAssertEqual(tok.chunks(Array(repeating: word, count: 150)).map(\.count), [75, 75])
        XCTAssertEqual(tok.chunks(Array(repeating: word, count: 151)).map(\.count), [75, 75, 1])
        // Comma at index 70: the chunk ends after it; ids 71… start the next chunk.
        var ids = Array(repeating: word, count: 80)
        ids[70] = comma
        let near = tok.chunks(ids)
        XCTAssertEqual(near.map(\.count), [71, 9])
        XCTAssertEqual(near[0].last, comma)
        XCTAssertEqual(near[0] + near[1], ids, "no id lost or added")
        // Comma at index 50: 25 ids before the end, beyond the 20 backtrack: a plain cut.
        ids = Array(repeating: word, count: 80)
        ids[50] = comma
        XCTAssertEqual(tok.chunks(ids).map(\.count), [75, 5])
        XCTAssertEqual(tok.chunks(ids, commaBacktrack: 0).map(\.count), [75, 5])
        // Comma as the 76th id: it starts the next chunk, no backtrack (A1111 checks commas first).
        ids = Array(repeating: word, count: 80)
        ids[75] = comma
        XCTAssertEqual(tok.chunks(ids).map(\.count), [75, 5])
        // Each chunk is wrapped like a whole prompt of those ids.
        XCTAssertEqual(tok.chunkIDs(Array(near[1])), tok.encodeForModel(String(repeating: "a ", count: 9)))
        let sd2 = try CLIPTokenizer(directory: FixturePaths.url("tokenizer/clip"),
                                    configDirectory: FixturePaths.url("tokenizer/clip-sd2-config"))
        XCTAssertEqual(sd2.chunkIDs([]), sd2.encodeForModel(""), "SD 2.x: pad after the end token")
    }
}
