import Foundation
import Kernels
import XCTest
@testable import Models

/// CLIPTextModel against transformers: every hidden state, last_hidden_state and clip skip.
final class TextEncoderReferenceTests: XCTestCase {
    private func check(_ model: String) throws {
        let ref = try Reference(model)
        let encoder = try CLIPTextEncoder(directory: ref.folder.appendingPathComponent("text_encoder"), pool: .shared)
        let tokenizer = try CLIPTokenizer(directory: ref.folder.appendingPathComponent("tokenizer"))
        let idsTensor = try ref.tensor("text.input_ids")
        let n = idsTensor.shape[0], l = idsTensor.shape[1]
        let flat = idsTensor.toArray().map { Int($0) }
        let ids = (0..<n).map { Array(flat[($0 * l)..<(($0 + 1) * l)]) }
        // The recorded ids are what our tokenizer produces for the recorded prompts.
        let index = try FixturePaths.json("reference/index.json")
        let prompts = ((((index["models"] as? [String: Any])?[model] as? [String: Any])?["tensors"] as? [String: Any])?["text.input_ids"] as? [String: Any])?["prompts"] as? [String]
        XCTAssertEqual(try XCTUnwrap(prompts).map { tokenizer.encodeForModel($0) }, ids)

        let expected = try ref.tensor("text.last_hidden_state")
        let out = Tensor(zeros: expected.shape)
        var states: [Int: Tensor] = [:]
        try encoder.run(ids, layersToRun: encoder.config.numHiddenLayers, clipSkip: 0, output: out) { i, h in
            let copy = Tensor(zeros: h.shape)
            copy.copy(from: h)
            states[i] = copy
        }
        assertClose(out, expected, "\(model) last_hidden_state")
        for i in 0...encoder.config.numHiddenLayers {
            assertClose(try XCTUnwrap(states[i]), try ref.tensor("text.hidden_states.\(i)"), "\(model) hidden_states.\(i)")
        }
        let skipped = Tensor(zeros: expected.shape)
        try encoder.encode(ids, clipSkip: 1, output: skipped)
        assertClose(skipped, try ref.tensor("text.clip_skip_1"), "\(model) clip_skip 1")

        XCTAssertThrowsError(try encoder.encode([[5, 100_000]], output: Tensor(zeros: [1, 2, encoder.config.hiddenSize]))) {
            XCTAssertEqual($0 as? TextEncoderError, .tokenOutOfRange(id: 100_000, vocabularySize: encoder.config.vocabSize))
        }
    }

    func testTinySD1() throws { try check("tiny-sd1") }
    func testTinySD2() throws { try check("tiny-sd2") }
}
