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
        default: return try CLIPTokenizer(directory: FixturePaths.url("\(key)/tokenizer"))
        }
    }

    func testCorpusIDsMatchTransformersExactly() throws {
        let corpus = try FixturePaths.json("tokenizer/corpus.json")
        let cases = try XCTUnwrap(corpus["cases"] as? [[String: Any]])
        let settings = try XCTUnwrap(corpus["tokenizers"] as? [String: [String: Any]])
        XCTAssertGreaterThan(cases.count, 10)
        for key in ["sd1", "sd2", "tiny-sd1", "tiny-sd2"] {
            let tok = try tokenizer(key)
            let s = try XCTUnwrap(settings[key])
            XCTAssertEqual(tok.padTokenID, s["pad_id"] as? Int, key)
            XCTAssertEqual(tok.bosTokenID, s["bos_id"] as? Int, key)
            XCTAssertEqual(tok.eosTokenID, s["eos_id"] as? Int, key)
            XCTAssertEqual(tok.maxLength, s["max_length"] as? Int, key)
            for c in cases {
                let text = try XCTUnwrap(c["text"] as? String)
                let name = c["name"] as? String ?? "?"
                let expected = try XCTUnwrap(c[key] as? [String: Any])
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
