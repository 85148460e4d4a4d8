import Foundation
import Kernels
import XCTest
@testable import Models

/// UNet2DConditionModel outputs against diffusers on tiny-sd1 (conv projections, int heads)
/// and tiny-sd2 (linear projections, per-block heads).
final class UNetReferenceTests: XCTestCase {
    private func check(_ model: String) throws {
        let ref = try Reference(model)
        let unet = try UNet(directory: ref.folder.appendingPathComponent("unet"), pool: .shared)
        let latents1 = try ref.tensor("unet.latents_b1"), context1 = try ref.tensor("unet.encoder_states_b1")
        for (name, t) in [("unet.out_b1_t1", Float(1)), ("unet.out_b1_t437_5", 437.5), ("unet.out_b1_t500", 500), ("unet.out_b1_t999", 999)] {
            let expected = try ref.tensor(name)
            let out = Tensor(zeros: expected.shape)
            var traced: [String: Tensor] = [:]
            unet.forward(sample: latents1, timesteps: [t], context: context1, output: out) { key, value in
                let copy = Tensor(zeros: value.shape)
                copy.copy(from: value)
                traced[key] = copy
            }
            if t == 500 {
                for key in ["time_embedding", "conv_in", "down_blocks.0", "down_blocks.1", "mid_block", "up_blocks.0", "up_blocks.1"] {
                    let r = try ref.tensor("unet.debug_t500.\(key)")
                    if let got = traced[key] { assertClose(got, r, "\(model) \(key)") } else { XCTFail("no trace for \(key)") }
                }
            }
            assertClose(out, expected, "\(model) \(name)")
        }
        // Batch 2, and a second call reusing the workspace.
        let expected = try ref.tensor("unet.out_b2_t500")
        let out = Tensor(zeros: expected.shape)
        unet(sample: try ref.tensor("unet.latents_b2"), timestep: 500, context: try ref.tensor("unet.encoder_states_b2"), output: out)
        assertClose(out, expected, "\(model) unet.out_b2_t500")
        let bytes = unet.workspaceBytes
        let again = Tensor(zeros: expected.shape)
        unet(sample: try ref.tensor("unet.latents_b2"), timestep: 500, context: try ref.tensor("unet.encoder_states_b2"), output: again)
        XCTAssertEqual(again.toArray(), out.toArray(), "second call gives the same numbers")
        XCTAssertEqual(unet.workspaceBytes, bytes, "a repeated call reuses the workspace")
    }

    func testTinySD1() throws { try check("tiny-sd1") }
    func testTinySD2() throws { try check("tiny-sd2") }
}
