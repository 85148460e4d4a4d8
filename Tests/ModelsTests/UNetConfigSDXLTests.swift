import Foundation
import XCTest
@testable import Models

/// The SDXL family's UNet configs: the built-in ones (decoded from the published config.json
/// values) and the variants that must be refused, each naming its field.
final class UNetConfigSDXLTests: XCTestCase {
    func testBuiltInSDXLFamily() {
        let sdxl = UNetConfig.sdxl
        XCTAssertEqual(sdxl.additionEmbedding, UNetAdditionEmbeddingConfig(timeEmbedDim: 256, inputDim: 2816))
        XCTAssertEqual(sdxl.additionEmbedding?.textEmbedsWidth(), 1280, "2816 − 6 × 256: OpenCLIP bigG's projection")
        XCTAssertEqual(sdxl.transformerLayersPerBlock, [[1, 1], [2, 2], [10, 10]])
        XCTAssertEqual(sdxl.upTransformerLayersPerBlock, [[10, 10, 10], [2, 2, 2], [1, 1, 1]])
        XCTAssertEqual(sdxl.midBlockType, .crossAttention)
        XCTAssertEqual(sdxl.midTransformerLayers, 10)
        XCTAssertEqual(sdxl.numAttentionHeads, [5, 10, 20])
        XCTAssertEqual(sdxl.crossAttentionDim, 2048)
        XCTAssertEqual(sdxl.timeEmbedding.dimension, 1280)
        XCTAssertEqual(sdxl.sampleSize, 128)
        var turbo = UNetConfig.sdxlTurbo
        XCTAssertEqual(turbo.sampleSize, 64)
        turbo.sampleSize = 128
        XCTAssertEqual(turbo, sdxl, "Turbo is SDXL's architecture at sample_size 64")

        let ssd = UNetConfig.ssd1b
        XCTAssertEqual(ssd.transformerLayersPerBlock, [[1, 1], [2, 2], [4, 4]])
        XCTAssertEqual(ssd.upTransformerLayersPerBlock, [[4, 4, 10], [2, 1, 1], [1, 1, 1]])
        XCTAssertEqual(ssd.midBlockType, .resnet)
        XCTAssertEqual(ssd.additionEmbedding, sdxl.additionEmbedding)
        let vega = UNetConfig.vega
        XCTAssertEqual(vega.transformerLayersPerBlock, [[1, 1], [1, 1], [2, 2]])
        XCTAssertEqual(vega.upTransformerLayersPerBlock, [[2, 2, 2], [1, 1, 1], [1, 1, 1]])
        XCTAssertEqual(vega.midBlockType, .resnet)
    }

    /// SD 1.x / 2.x configs keep their meaning: no addition embedding, one layer everywhere,
    /// the cross-attention mid block.
    func testSDConfigsUnchanged() {
        XCTAssertNil(UNetConfig.sd15.additionEmbedding)
        XCTAssertEqual(UNetConfig.sd15.transformerLayersPerBlock, Array(repeating: [1, 1], count: 4))
        XCTAssertEqual(UNetConfig.sd15.upTransformerLayersPerBlock, Array(repeating: [1, 1, 1], count: 4))
        XCTAssertEqual(UNetConfig.sd21.midBlockType, .crossAttention)
        XCTAssertEqual(UNetConfig.sd21.midTransformerLayers, 1)
    }

    private func tinySDXL() throws -> [String: Any] {
        try FixturePaths.json("tiny-sdxl/unet/config.json")
    }

    private func decode(_ json: [String: Any]) throws -> UNetConfig {
        try UNetConfig(json: ConfigJSON(file: "unet/config.json", object: json))
    }

    func assertRefused(_ edits: [String: Any], _ expected: ModelConfigError, line: UInt = #line) throws {
        var json = try tinySDXL()
        json.merge(edits) { $1 }
        XCTAssertThrowsError(try decode(json), line: line) { e in
            XCTAssertEqual(e as? ModelConfigError, expected, line: line)
        }
    }

    func testRefusedVariantsNameTheField() throws {
        let f = "unet/config.json"
        try assertRefused(["addition_embed_type": "text_image"],
                          .unsupported(file: f, field: "addition_embed_type", value: "text_image"))
        try assertRefused(["addition_embed_type": "text"], .unsupported(file: f, field: "addition_embed_type", value: "text"))
        try assertRefused(["addition_time_embed_dim": NSNull()], .missingField(file: f, field: "addition_time_embed_dim"))
        try assertRefused(["projection_class_embeddings_input_dim": 0],
                          .invalidValue(file: f, field: "projection_class_embeddings_input_dim", reason: "must be positive, got 0"))
        // A per-layer down list needs explicit up-block depths, as diffusers requires.
        try assertRefused(["transformer_layers_per_block": [1, [3]] as [Any]],
                          .missingField(file: f, field: "reverse_transformer_layers_per_block"))
        try assertRefused(["transformer_layers_per_block": [1, [2, 3, 4]] as [Any], "reverse_transformer_layers_per_block": [2, 1]],
                          .invalidValue(file: f, field: "transformer_layers_per_block",
                                        reason: "block 1 lists 3 layer counts, the block has 1 layers"))
        try assertRefused(["reverse_transformer_layers_per_block": [[2, 2, 2], 1] as [Any]],
                          .invalidValue(file: f, field: "reverse_transformer_layers_per_block",
                                        reason: "block 0 lists 3 layer counts, the block has 2 layers"))
        try assertRefused(["transformer_layers_per_block": [1, 2, 3]],
                          .invalidValue(file: f, field: "transformer_layers_per_block", reason: "has 3 entries, expected 2 (one per block)"))
        try assertRefused(["mid_block_type": "UNetMidBlock2DSimpleCrossAttn"],
                          .unsupported(file: f, field: "mid_block_type", value: "UNetMidBlock2DSimpleCrossAttn"))
        try assertRefused(["encoder_hid_dim": 64], .unsupported(file: f, field: "encoder_hid_dim", value: "64"))
        try assertRefused(["mid_block_only_cross_attention": true],
                          .unsupported(file: f, field: "mid_block_only_cross_attention", value: "true"))
    }

    func testPerLayerDepthsAndMidBlockKinds() throws {
        var json = try tinySDXL()
        json["transformer_layers_per_block"] = [1, [3]] as [Any]
        json["reverse_transformer_layers_per_block"] = [[4, 5], 2] as [Any]
        json["mid_block_type"] = NSNull()
        let c = try decode(json)
        XCTAssertEqual(c.transformerLayersPerBlock, [[1], [3]])
        XCTAssertEqual(c.midTransformerLayers, 3, "transformer_layers_per_block[-1][0]")
        XCTAssertEqual(c.upTransformerLayersPerBlock, [[4, 5], [2, 2]])
        XCTAssertEqual(c.midBlockType, .absent, "an explicit null is diffusers' mid_block_type None")
        json.removeValue(forKey: "mid_block_type")
        XCTAssertEqual(try decode(json).midBlockType, .crossAttention, "absent: diffusers' default")
    }
}

extension UNetConfigSDXLTests {
    /// Layer counts that would lay out absurd (or negative) per-layer lists are refused
    /// before anything is sized by them.
    func testLayerCountsAreBounded() throws {
        let f = "unet/config.json"
        try assertRefused(["layers_per_block": -1], .invalidValue(file: f, field: "layers_per_block", reason: "-1 is outside 1…64"))
        try assertRefused(["layers_per_block": 1_000_000_000],
                          .invalidValue(file: f, field: "layers_per_block", reason: "1000000000 is outside 1…64"))
        try assertRefused(["transformer_layers_per_block": [1, -2]],
                          .wrongType(file: f, field: "transformer_layers_per_block", expected: "integers in 0…1000 or lists of them (block 1: -2)"))
        try assertRefused(["transformer_layers_per_block": [1, 2.5]],
                          .wrongType(file: f, field: "transformer_layers_per_block", expected: "integers in 0…1000 or lists of them (block 1: 2.5)"))
    }
}
