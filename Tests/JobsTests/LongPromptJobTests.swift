import Foundation
import Jobs
import Pipeline
import XCTest

/// The `long_prompt` job field: parsing, the journal, and the intake's refusal of a chunked
/// prompt over `LongPromptMode.maximumChunks` chunks (counted with the job's model's tokenizer).
final class LongPromptJobTests: XCTestCase {
    static let tinyModel = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-sd1")

    func parser() -> JobFileParser {
        JobFileParser(nativeSize: JobFileParserTests.nativeSizes,
                      promptTokenizer: PromptTokenizers(model: ModelReference(path: Self.tinyModel)).lookup)
    }

    func parse(_ text: String, parser: JobFileParser? = nil) throws -> JobSpec {
        let jobs = try (parser ?? self.parser()).parse(bytes: Array(text.utf8), file: "j.yaml")
        return try XCTUnwrap(jobs.first)
    }

    func testFieldParsesAndDefaultsToTruncate() throws {
        XCTAssertEqual(try parse("prompt: a cat\n").longPrompt, .truncate)
        XCTAssertEqual(try parse("prompt: a cat\nlong_prompt: truncate\n").longPrompt, .truncate)
        let chunked = try parse("prompt: a cat\nlong_prompt: chunk\nseed: 1\n")
        XCTAssertEqual(chunked.longPrompt, .chunk)
        XCTAssertEqual(chunked.request(image: 0).longPrompt, .chunk)
        XCTAssertThrowsError(try parse("prompt: a cat\nlong_prompt: \"Chunk\"\n")) { error in
            XCTAssertEqual("\(error)", "j.yaml:2:14: field 'long_prompt': unknown value \"Chunk\"; valid: truncate, chunk")
        }
    }

    /// A truncating job journals as before (no key); a chunking one round-trips.
    func testJournalEncoding() throws {
        let plain = try parse("prompt: a cat\n")
        XCTAssertFalse(String(decoding: try JSONEncoder().encode(plain), as: UTF8.self).contains("longPrompt"))
        let chunked = try parse("prompt: a cat\nlong_prompt: chunk\n")
        let data = try JSONEncoder().encode(chunked)
        XCTAssertTrue(String(decoding: data, as: UTF8.self).contains("\"longPrompt\":\"chunk\""))
        XCTAssertEqual(try JSONDecoder().decode(JobSpec.self, from: data), chunked)
        XCTAssertEqual(try JSONDecoder().decode(JobSpec.self, from: try JSONEncoder().encode(plain)).longPrompt, .truncate)
    }

    /// 600 tokens ("a" is one token of the tiny model's vocabulary) are 8 chunks: accepted;
    /// 601 are refused at the value's line and column; truncation takes any length; an
    /// unguided job's negative prompt is not encoded, so not counted.
    func testTooManyChunksAreRefusedAtIntake() throws {
        let fits = String(repeating: "a ", count: 600), over = String(repeating: "a ", count: 601)
        XCTAssertEqual(try parse("prompt: \(fits)\nlong_prompt: chunk\n").longPrompt, .chunk)
        XCTAssertThrowsError(try parse("long_prompt: chunk\nprompt: \(over)\n")) { error in
            XCTAssertEqual("\(error)", "j.yaml:2:9: field 'prompt': prompt needs 9 chunks of 75 tokens with long_prompt: chunk; at most 8 (600 tokens) are allowed: shorten it")
        }
        XCTAssertThrowsError(try parse("prompt: a cat\nnegative_prompt: \(over)\nlong_prompt: chunk\n")) { error in
            XCTAssertEqual("\(error)", "j.yaml:2:18: field 'negative_prompt': negative_prompt needs 9 chunks of 75 tokens with long_prompt: chunk; at most 8 (600 tokens) are allowed: shorten it")
        }
        XCTAssertNoThrow(try parse("prompt: a cat\nnegative_prompt: \(over)\nlong_prompt: chunk\nguidance: 1\n"))
        XCTAssertNoThrow(try parse("prompt: \(over)\n"))
        // Without a tokenizer lookup the intake cannot count; the run refuses it instead.
        XCTAssertNoThrow(try parse("prompt: \(over)\nlong_prompt: chunk\n",
                                   parser: JobFileParser(nativeSize: JobFileParserTests.nativeSizes)))
    }
}
