import Foundation
import Kernels
import XCTest
@testable import Models

/// SDXL's two text encoders against transformers (Tests/Fixtures/reference/tiny-sdxl, made by
/// tools/fixtures/sdxl_refs.py): `hidden_states[-2]` without final_layer_norm for both, and
/// text_encoder_2's projected pooled output (`text_embeds`, pooled at argmax(ids) because its
/// config has the legacy `eos_token_id` 2).
final class XLTextEncoderReferenceTests: XCTestCase {
    private let ref = Result { try Reference("tiny-sdxl") }

    private func ids(_ name: String) throws -> [[Int]] {
        let t = try ref.get().tensor(name)
        let n = t.shape[0], l = t.shape[1]
        let flat = t.toArray().map { Int($0) }
        return (0..<n).map { Array(flat[($0 * l)..<(($0 + 1) * l)]) }
    }

    private func prompts() throws -> [String] {
        let index = try FixturePaths.json("reference/tiny-sdxl.json")
        let entry = ((index["tensors"] as? [String: Any])?["text1.input_ids"] as? [String: Any])?["prompts"] as? [String]
        return try XCTUnwrap(entry)
    }

    /// Both tokenizers give the recorded ids (tokenizer_2 pads with "!", id 0).
    func testTokenizersGiveRecordedIDs() throws {
        let folder = try ref.get().folder
        let first = try CLIPTokenizer(directory: folder.appendingPathComponent("tokenizer"))
        let second = try CLIPTokenizer(directory: folder.appendingPathComponent("tokenizer_2"))
        XCTAssertEqual(second.padTokenID, 0)
        XCTAssertNotEqual(first.padTokenID, second.padTokenID)
        XCTAssertEqual(try prompts().map(first.encodeForModel), try ids("text1.input_ids"))
        XCTAssertEqual(try prompts().map(second.encodeForModel), try ids("text2.input_ids"))
    }

    func testPenultimateStatesOfTextEncoder() throws {
        let r = try ref.get()
        let encoder = try CLIPTextEncoder(directory: r.folder.appendingPathComponent("text_encoder"), pool: .shared)
        XCTAssertNil(encoder.projectionWidth)
        let expected = try r.tensor("text1.penultimate")
        let out = Tensor(zeros: expected.shape)
        try encoder.encodePenultimate(try ids("text1.input_ids"), output: out)
        assertClose(out, expected, "text_encoder hidden_states[-2]")
        // Not the normalized state: the clip-skip path (final_layer_norm applied) differs.
        let normed = Tensor(zeros: expected.shape)
        try encoder.encode(try ids("text1.input_ids"), clipSkip: 1, output: normed)
        XCTAssertGreaterThan(relativeError(normed, expected), 1e-2)
        // A CLIPTextModel has no text_projection to pool through.
        XCTAssertThrowsError(try encoder.encodePenultimate(try ids("text1.input_ids"), output: out,
                                                           pooled: Tensor(zeros: [3, 20]))) {
            XCTAssertEqual($0 as? TextEncoderError, .noProjection)
        }
    }

    func testPenultimateStatesAndPooledProjectionOfTextEncoder2() throws {
        let r = try ref.get()
        let encoder = try CLIPTextEncoder(directory: r.folder.appendingPathComponent("text_encoder_2"), projection: true, pool: .shared)
        XCTAssertEqual(encoder.config.eosTokenID, 2)
        XCTAssertEqual(encoder.projectionWidth, 20)
        let expected = try r.tensor("text2.penultimate"), expectedPooled = try r.tensor("text2.text_embeds")
        let out = Tensor(zeros: expected.shape), pooled = Tensor(zeros: expectedPooled.shape)
        try encoder.encodePenultimate(try ids("text2.input_ids"), output: out, pooled: pooled)
        assertClose(out, expected, "text_encoder_2 hidden_states[-2]")
        assertClose(pooled, expectedPooled, "text_encoder_2 text_embeds")
        // Without pooled output the last layer is skipped; the states are the same.
        let alone = Tensor(zeros: expected.shape)
        try encoder.encodePenultimate(try ids("text2.input_ids"), output: alone)
        XCTAssertEqual(alone.toArray(), out.toArray())
        // The last hidden state (final_layer_norm) still comes out of the ordinary path.
        let last = Tensor(zeros: expected.shape)
        try encoder.encode(try ids("text2.input_ids"), output: last)
        assertClose(last, try r.tensor("text2.last_hidden_state"), "text_encoder_2 last_hidden_state")
    }

    /// Loading text_encoder_2 as a plain CLIPTextModel ignores text_projection; as one with
    /// projection but without projection_dim in its config is refused naming the field.
    func testProjectionNeedsProjectionDim() throws {
        let source = try ref.get().folder.appendingPathComponent("text_encoder_2")
        XCTAssertNil(try CLIPTextEncoder(directory: source, pool: .shared).projectionWidth)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xl-text-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("config.json"))) as? [String: Any])
        config["projection_dim"] = nil
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: source.appendingPathComponent("model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try CLIPTextEncoder(directory: dir, projection: true, pool: .shared)) {
            XCTAssertEqual($0 as? ModelConfigError, .missingField(file: dir.appendingPathComponent("config.json").path, field: "projection_dim"))
        }
    }

    /// transformers' CLIPTextTransformer pooling: argmax(ids) with the legacy eos_token_id 2,
    /// else the first eos_token_id (0 when there is none).
    func testPoolingPositions() {
        let rows = [[49406, 320, 49407, 49407, 49407], [49406, 49407, 0, 0, 0], [49406, 5, 6, 7, 8]]
        XCTAssertEqual(CLIPTextEncoder.poolingPositions(rows, eosTokenID: 2), [2, 1, 0])
        XCTAssertEqual(CLIPTextEncoder.poolingPositions(rows, eosTokenID: 49407), [2, 1, 0])
        XCTAssertEqual(CLIPTextEncoder.poolingPositions([[0, 9, 3, 9, 9]], eosTokenID: 2), [1])
        XCTAssertEqual(CLIPTextEncoder.poolingPositions([[0, 9, 3, 9, 9]], eosTokenID: 3), [2])
    }
}
