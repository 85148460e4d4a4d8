import Foundation
import XCTest
@testable import Models

/// Token ids must equal transformers.CLIPTokenizer's exactly (Tests/Fixtures/tokenizer/corpus.json).
final class CLIPTokenizerTests: XCTestCase {
    private func tokenizer(_ key: String) throws -> CLIPTokenizer {
        switch key {
        case "sd1": return try CLIPTokenizer(directory: FixturePaths.url("tokenizer/clip"))
        case "sd2": return try CLIPTokenizer(directory: FixturePaths.url("tokenizer/clip"),
                                             configDirectory: FixturePaths.url("tokenizer/clip-sd2-config"))
        case "tf5/sd2": return try CLIPTokenizer(directory: FixturePaths.url("tokenizer/tf5/clip-sd2"))
        case "tf5/tiny-sd1": return try CLIPTokenizer(directory: FixturePaths.url("tokenizer/tf5/tiny-sd1"))
        default: return try CLIPTokenizer(directory: FixturePaths.url("\(key)/tokenizer"))
        }
    }

    func testCorpusIDsMatchTransformersExactly() throws {
        let corpus = try FixturePaths.json("tokenizer/corpus.json")
        let cases = try XCTUnwrap(corpus["cases"] as? [[String: Any]])
        let settings = try XCTUnwrap(corpus["tokenizers"] as? [String: [String: Any]])
        XCTAssertGreaterThan(cases.count, 10)
        // tf5/…: the same tokenizers re-saved by transformers 5 (tokenizer.json only, made by
        // tools/fixtures/tokenizer_json_refs.py), which must give the classic folders' ids.
        for (key, reference) in [("sd1", "sd1"), ("sd2", "sd2"), ("tiny-sd1", "tiny-sd1"), ("tiny-sd2", "tiny-sd2"),
                                 ("tf5/sd2", "sd2"), ("tf5/tiny-sd1", "tiny-sd1")] {
            let tok = try tokenizer(key)
            let s = try XCTUnwrap(settings[reference])
            XCTAssertEqual(tok.padTokenID, s["pad_id"] as? Int, key)
            XCTAssertEqual(tok.bosTokenID, s["bos_id"] as? Int, key)
            XCTAssertEqual(tok.eosTokenID, s["eos_id"] as? Int, key)
            XCTAssertEqual(tok.maxLength, s["max_length"] as? Int, key)
            for c in cases {
                let text = try XCTUnwrap(c["text"] as? String)
                let name = c["name"] as? String ?? "?"
                let expected = try XCTUnwrap(c[reference] as? [String: Any])
                let ids = tok.encodeForModel(text)
                XCTAssertEqual(ids, expected["ids"] as? [Int], "\(key) / \(name)")
                XCTAssertEqual([tok.bosTokenID] + tok.encode(text) + [tok.eosTokenID],
                               expected["untruncated_ids"] as? [Int], "\(key) / \(name) untruncated")
            }
        }
    }

    func testTruncationKeepsEndTokenAndPadding() throws {
        let tok = try tokenizer("sd2")
        let long = tok.encodeForModel(String(repeating: "cat ", count: 200))
        XCTAssertEqual(long.count, 77)
        XCTAssertEqual(long.first, 49406)
        XCTAssertEqual(long.last, 49407)
        let short = tok.encodeForModel("cat")
        XCTAssertEqual(short.count, 77)
        XCTAssertEqual(Array(short[3...]), Array(repeating: 0, count: 74))
    }

    /// The vocabulary shipped for single-file checkpoints (models/clip-tokenizer) is the tested
    /// CLIP vocabulary byte for byte, and without a config the checkpoint family picks the pad.
    func testShippedVocabularyForSingleFiles() throws {
        let shipped = FixturePaths.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("models/clip-tokenizer")
        for name in ["vocab.json", "merges.txt"] {
            XCTAssertEqual(try Data(contentsOf: shipped.appendingPathComponent(name)),
                           try Data(contentsOf: FixturePaths.url("tokenizer/clip/\(name)")), name)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: shipped.appendingPathComponent("tokenizer_config.json").path))
        let sd1 = try CLIPTokenizer(directory: shipped, defaultPadToken: CheckpointFamily.sd1.standardPadToken)
        let sd2 = try CLIPTokenizer(directory: shipped, defaultPadToken: CheckpointFamily.sd2.standardPadToken)
        XCTAssertEqual([sd1.bosTokenID, sd1.eosTokenID, sd1.padTokenID], [49406, 49407, 49407])
        XCTAssertEqual([sd2.bosTokenID, sd2.eosTokenID, sd2.padTokenID], [49406, 49407, 0])
        let corpus = try FixturePaths.json("tokenizer/corpus.json")
        let first = try XCTUnwrap((corpus["cases"] as? [[String: Any]])?.first)
        let text = try XCTUnwrap(first["text"] as? String)
        XCTAssertEqual(sd1.encodeForModel(text), (first["sd1"] as? [String: Any])?["ids"] as? [Int])
        XCTAssertEqual(sd2.encodeForModel(text), (first["sd2"] as? [String: Any])?["ids"] as? [Int])
    }

    func testTokenizerJSONFolderHasNoClassicFiles() throws {
        let folder = FixturePaths.url("tokenizer/tf5/tiny-sd1")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        XCTAssertEqual(files, ["tokenizer.json", "tokenizer_config.json"])
    }

    func testFolderWithoutTokenizerFilesSaysWhatIsMissing() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try CLIPTokenizer(directory: dir)) { e in
            XCTAssertEqual(e as? TokenizerError, .cannotRead(file: dir.path, reason: "no vocab.json + merges.txt and no tokenizer.json: not a CLIP tokenizer folder"))
        }
    }

    func testBadTokenizerJSONNamesFileAndPart() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("tokenizer.json")
        try #"{"model": {"type": "Unigram", "vocab": []}}"#.write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CLIPTokenizer(directory: dir)) { e in
            XCTAssertEqual(e as? TokenizerError, .invalidVocab(file: file.path, reason: "model type is \"Unigram\", a CLIP tokenizer is \"BPE\""))
        }
        try #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"], ["a"]]}}"#
            .write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CLIPTokenizer(directory: dir)) { e in
            XCTAssertEqual(e as? TokenizerError, .invalidMerge(file: file.path, line: 2, text: "[\"a\"]"))
        }
    }

    func testBadMergesFileNamesLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try #"{"a": 0, "b": 1, "<|startoftext|>": 2, "<|endoftext|>": 3}"#.write(to: dir.appendingPathComponent("vocab.json"), atomically: true, encoding: .utf8)
        try "#version: 0.2\na b\nonlyone\n".write(to: dir.appendingPathComponent("merges.txt"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CLIPTokenizer(directory: dir)) { e in
            XCTAssertEqual(e as? TokenizerError, .invalidMerge(file: dir.appendingPathComponent("merges.txt").path, line: 3, text: "onlyone"))
        }
    }
}
