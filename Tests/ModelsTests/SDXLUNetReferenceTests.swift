import Foundation
import Kernels
import XCTest
@testable import Models

/// The SDXL-shaped UNet (`addition_embed_type: text_time`, a level without attention,
/// `transformer_layers_per_block` [1, 2], linear projections) against diffusers on tiny-sdxl:
/// a non-square batch of 2 whose rows have different time ids (tools/fixtures/sdxl_refs.py).
final class SDXLUNetReferenceTests: XCTestCase {
    func testTinySDXL() throws {
        let ref = try Reference("tiny-sdxl")
        let unet = try UNet(directory: ref.folder.appendingPathComponent("unet"), pool: .shared)
        XCTAssertEqual(unet.config.additionEmbedding, UNetAdditionEmbeddingConfig(timeEmbedDim: 8, inputDim: 68))
        XCTAssertEqual(unet.config.transformerLayersPerBlock, [[1], [2]])
        XCTAssertEqual(unet.config.upTransformerLayersPerBlock, [[2, 2], [1, 1]])
        XCTAssertEqual(unet.config.midTransformerLayers, 2)
        let latents = try ref.tensor("unet.latents"), context = try ref.tensor("unet.encoder_states")
        let added = UNetAdditionalConditioning(textEmbeds: try ref.tensor("unet.text_embeds"), timeIDs: try ref.tensor("unet.time_ids"))
        for (name, t) in [("unet.out_t1", Float(1)), ("unet.out_t500", 500), ("unet.out_t999", 999)] {
            let expected = try ref.tensor(name)
            let out = Tensor(zeros: expected.shape)
            var traced: [String: Tensor] = [:]
            unet.forward(sample: latents, timesteps: [t, t], context: context, added: added, output: out) { key, value in
                let copy = Tensor(zeros: value.shape)
                copy.copy(from: value)
                traced[key] = copy
            }
            if t == 500 {
                for key in ["time_embedding", "add_embedding", "conv_in", "down_blocks.0", "down_blocks.1", "mid_block",
                            "up_blocks.0", "up_blocks.1"] {
                    let r = try ref.tensor("unet.debug_t500.\(key)")
                    if let got = traced[key] { assertClose(got, r, "tiny-sdxl \(key)") } else { XCTFail("no trace for \(key)") }
                }
            }
            assertClose(out, expected, "tiny-sdxl \(name)")
        }
    }

    /// The time ids reach the output: swapping the two rows' ids changes it (so a UNet that
    /// ignored them, or added aug_emb after the SiLU, could not pass the test above by luck).
    func testTimeIDsMatter() throws {
        let ref = try Reference("tiny-sdxl")
        let unet = try UNet(directory: ref.folder.appendingPathComponent("unet"), pool: .shared)
        let ids = try ref.tensor("unet.time_ids")
        let swapped = Tensor(shape: ids.shape, values: Array(ids.toArray()[6..<12] + ids.toArray()[0..<6]))
        let expected = try ref.tensor("unet.out_t500")
        let out = Tensor(zeros: expected.shape)
        unet(sample: try ref.tensor("unet.latents"), timestep: 500, context: try ref.tensor("unet.encoder_states"),
             added: UNetAdditionalConditioning(textEmbeds: try ref.tensor("unet.text_embeds"), timeIDs: swapped), output: out)
        XCTAssertGreaterThan(relativeError(out, expected), 0.01)
    }
}

/// An SSD-1B-shaped UNet (tools/fixtures/sdxl_refs.py's ASYM_UNET): per-layer transformer
/// depths in a down block, up blocks with their own depths
/// (`reverse_transformer_layers_per_block`), a one-resnet `UNetMidBlock2D`, loaded from its
/// config with no special case.
final class AsymmetricUNetReferenceTests: XCTestCase {
    func testTinyAsymmetricUNet() throws {
        let ref = try Reference("tiny-sdxl-asym-unet"), inputs = try Reference("tiny-sdxl")
        let unet = try UNet(directory: ref.folder, pool: .shared)
        XCTAssertEqual(unet.config.transformerLayersPerBlock, [[1, 1], [1, 2], [2, 2]])
        XCTAssertEqual(unet.config.upTransformerLayersPerBlock, [[2, 1, 3], [1, 2, 1], [1, 1, 1]])
        XCTAssertEqual(unet.config.midBlockType, .resnet)
        let expected = try ref.tensor("unet.out_t500")
        let out = Tensor(zeros: expected.shape)
        var traced: [String: Tensor] = [:]
        let added = UNetAdditionalConditioning(textEmbeds: try inputs.tensor("unet.text_embeds"),
                                               timeIDs: try inputs.tensor("unet.time_ids"))
        unet.forward(sample: try inputs.tensor("unet.latents"), timesteps: [500, 500], context: try inputs.tensor("unet.encoder_states"),
                     added: added, output: out) { key, value in
            let copy = Tensor(zeros: value.shape)
            copy.copy(from: value)
            traced[key] = copy
        }
        for key in ["add_embedding", "down_blocks.0", "down_blocks.1", "down_blocks.2", "mid_block", "up_blocks.0", "up_blocks.1", "up_blocks.2"] {
            let r = try ref.tensor("unet.debug_t500.\(key)")
            if let got = traced[key] { assertClose(got, r, "asym \(key)") } else { XCTFail("no trace for \(key)") }
        }
        assertClose(out, expected, "asym unet.out_t500")
    }
}

/// `UNet.flops` (what diffusion-bench divides by time) counts the SDXL parts: the
/// add_embedding MLP, per-layer transformer depths, asymmetric up blocks and the one-resnet
/// mid block, equal to PyTorch's FlopCounterMode on the same call (recorded by sdxl_refs.py).
final class SDXLUNetFlopsTests: XCTestCase {
    func testFlopsEqualPyTorchCounter() throws {
        let recorded = try XCTUnwrap(try FixturePaths.json("reference/tiny-sdxl-asym-unet.json")["flops"] as? [String: Double])
        for (name, folder) in [("tiny-sdxl", "tiny-sdxl/unet"), ("tiny-sdxl-asym-unet", "tiny-sdxl-asym-unet")] {
            let unet = try UNet(directory: FixturePaths.url(folder), pool: .shared)
            XCTAssertEqual(unet.flops(batch: 2, height: 8, width: 12, contextLength: 77), try XCTUnwrap(recorded[name]), name)
        }
    }
}
