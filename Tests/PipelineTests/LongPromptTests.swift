import Foundation
import Kernels
import Models
import XCTest
@testable import Pipeline

/// `long_prompt: chunk` (AUTOMATIC1111's chunking) against `truncate` (diffusers) on the tiny
/// SD 1.x fixture model, and the prompt report. There is no diffusers reference for chunking:
/// these check its defining properties.
final class LongPromptTests: XCTestCase {
    static let sentence = "a lighthouse on a rocky island at dusk with waves and seagulls and a small boat in the harbour under a purple sky"

    func pipeline() throws -> TextToImagePipeline {
        try TextToImagePipeline(modelDirectory: PipelineReferenceTests.fixtures.appendingPathComponent("tiny-sd1"), threads: 2)
    }

    /// The sentence repeated, then "a" (one token) until the prompt is exactly `tokens` tokens.
    func prompt(tokens: Int, _ tokenizer: CLIPTokenizer) throws -> String {
        var text = ""
        while tokenizer.encode(text + " " + Self.sentence).count <= tokens { text += " " + Self.sentence }
        while tokenizer.encode(text).count < tokens { text += " a" }
        XCTAssertEqual(tokenizer.encode(text).count, tokens)
        return text.trimmingCharacters(in: .whitespaces)
    }

    func request(_ prompt: String, _ mode: LongPromptMode, negative: String = "") -> GenerationRequest {
        GenerationRequest(prompt: prompt, negativePrompt: negative, width: 32, height: 32, steps: 4, sampler: .euler,
                          guidance: 7.5, seed: 11, longPrompt: mode)
    }

    /// (a) A prompt that fits in one chunk gives exactly the image truncation gives (also with
    /// a negative prompt and without guidance).
    func testShortPromptChunkedIsIdenticalToTruncated() throws {
        let p = try pipeline()
        let text = try prompt(tokens: 60, p.tokenizer)
        for negative in ["", "blurry, low quality"] {
            let truncated = try p.generate(request(text, .truncate, negative: negative), snapshotEvery: 0) { _ in .proceed }
            let chunked = try p.generate(request(text, .chunk, negative: negative), snapshotEvery: 0) { _ in .proceed }
            XCTAssertEqual(chunked, truncated, "negative \(negative)")
        }
        var unguided = request(text, .chunk)
        unguided.guidance = 1
        let chunked = try p.generate(unguided, snapshotEvery: 0) { _ in .proceed }
        unguided.longPrompt = .truncate
        XCTAssertEqual(chunked, try p.generate(unguided, snapshotEvery: 0) { _ in .proceed })
    }

    /// (b) A 150-token prompt chunked: 154 context rows per batch entry; the first 77 are the
    /// encoding of the first chunk alone (= the truncated prompt's, no comma to backtrack to),
    /// the last 77 that of the second chunk alone; the empty negative prompt is padded with
    /// the empty prompt's encoding. (c) The image differs from truncation's.
    func testLongPromptChunkedConditioningAndImage() throws {
        let p = try pipeline()
        let tok = p.tokenizer
        let text = try prompt(tokens: 150, tok)
        let ids = tok.encode(text)
        let context = try p.conditioning(request(text, .chunk))
        let hidden = p.textEncoder.config.hiddenSize
        XCTAssertEqual(context.shape, [2, 154, hidden])
        let rowFloats = 77 * hidden
        func rows(_ batch: Int, _ chunk: Int) -> [Float] {
            Array(UnsafeBufferPointer(start: context.data + (batch * 154 + chunk * 77) * hidden, count: rowFloats))
        }
        func alone(_ tokens: [Int]) throws -> [Float] {
            let out = Tensor(zeros: [1, 77, hidden])
            try p.textEncoder.encode([tokens], output: out)
            return Array(UnsafeBufferPointer(start: out.data, count: rowFloats))
        }
        XCTAssertEqual(tok.chunks(ids).map(\.count), [75, 75])
        XCTAssertEqual(rows(1, 0), try alone(tok.chunkIDs(Array(ids.prefix(75)))))
        XCTAssertEqual(rows(1, 0), try alone(tok.encodeForModel(text)), "first chunk = the truncated prompt")
        XCTAssertEqual(rows(1, 1), try alone(tok.chunkIDs(Array(ids.suffix(75)))))
        XCTAssertNotEqual(rows(1, 0), rows(1, 1))
        let empty = try alone(tok.encodeForModel(""))
        XCTAssertEqual(rows(0, 0), empty)
        XCTAssertEqual(rows(0, 1), empty, "the negative prompt is padded with the empty prompt")

        let truncatedImage = try p.generate(request(text, .truncate), snapshotEvery: 0) { _ in .proceed }
        let chunkedImage = try p.generate(request(text, .chunk), snapshotEvery: 0) { _ in .proceed }
        let changed = zip(truncatedImage.pixels, chunkedImage.pixels).filter { $0 != $1 }.count
        XCTAssertGreaterThan(changed, truncatedImage.pixels.count / 10, "the second chunk changes the image")
        // Back to 77 rows: the next request reuses the pipeline as before.
        XCTAssertEqual(try p.conditioning(request(text, .truncate)).shape, [2, 77, hidden])
    }

    /// The report counts what truncation drops, for the prompt and the negative prompt,
    /// and nothing with chunking; over 8 chunks the request is refused.
    func testPromptReport() throws {
        let p = try pipeline()
        let text = try prompt(tokens: 150, p.tokenizer)
        let negative = try prompt(tokens: 80, p.tokenizer)
        let report = try p.promptReport(request(text, .truncate, negative: negative))
        XCTAssertEqual(report.prompt.tokens, 150)
        XCTAssertEqual(report.prompt.droppedTokens, 75)
        XCTAssertEqual(report.negativePrompt.droppedTokens, 5)
        XCTAssertEqual(report.negativePrompt.droppedText, "a a a a a")
        XCTAssertEqual(report.windowTokens, 77)
        XCTAssertEqual(report.warnings.filter { $0.hasPrefix("negative prompt truncated") },
                       ["negative prompt truncated to 77 tokens: dropped 5 tokens (\"a a a a a\")"])
        XCTAssertTrue(report.warnings.contains { $0.hasPrefix("prompt truncated to 77 tokens: dropped 75 tokens (\"") })

        let chunked = try p.promptReport(request(text, .chunk, negative: negative))
        XCTAssertEqual(chunked.prompt.droppedTokens, 0)
        XCTAssertEqual(chunked.prompt.chunks, 2)
        XCTAssertEqual(chunked.negativePrompt.chunks, 2)
        XCTAssertEqual(chunked.windowTokens, 154)
        XCTAssertFalse(chunked.warnings.contains { $0.contains("truncated") })

        var unguided = request(text, .truncate, negative: negative)
        unguided.guidance = 1
        XCTAssertEqual(try p.promptReport(unguided).negativePrompt, PromptReport.Text(), "an unused negative prompt is not reported")

        let huge = try prompt(tokens: 8 * 75 + 1, p.tokenizer)
        XCTAssertThrowsError(try p.promptReport(request(huge, .chunk))) { error in
            XCTAssertEqual("\(error)", "invalid generation request: prompt needs 9 chunks of 75 tokens with long_prompt: chunk; at most 8 (600 tokens) are allowed: shorten it")
        }
        XCTAssertThrowsError(try p.generate(request("a cat", .chunk, negative: huge), snapshotEvery: 0) { _ in .proceed })
        XCTAssertNoThrow(try p.promptReport(request(huge, .truncate)))
    }
}
