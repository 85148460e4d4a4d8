import Foundation
import Kernels
import XCTest
@testable import Models

/// The second-edition shapes autoencoder (`tools/train/checkpoints/vae-v2`, trained by
/// `tools/train/train.py --vae-only`) loaded from its fp16 folder and run by the engine,
/// against diffusers' `AutoencoderKL` on held-out renders (tools/fixtures/vae_v2_refs.py),
/// within the component tolerance the other VAE fixtures use.
final class VAEv2ReferenceTests: XCTestCase {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools/train/checkpoints/vae-v2")

    func testEncodeAndDecodeOfHeldOutRendersMatchDiffusers() throws {
        let ref = try Reference("vae-v2")
        let vae = try VAE(directory: Self.folder, pool: .shared)
        let mean = try ref.tensor("encode_mean"), std = try ref.tensor("encode_std")
        let image = try ref.tensor("encode_in")
        // The latents' shape follows from the config: 64 px renders, the folder's factor and channels.
        XCTAssertEqual(mean.shape, [2, vae.config.latentChannels, 64 / vae.downscaleFactor, 64 / vae.downscaleFactor])

        let gotMean = Tensor(zeros: mean.shape), gotStd = Tensor(zeros: std.shape)
        try vae.encode(image, mean: gotMean, std: gotStd)
        assertClose(gotMean, mean, "vae-v2 encode mean")
        assertClose(gotStd, std, "vae-v2 encode std")

        let expected = try ref.tensor("decode_out")
        let decoded = Tensor(zeros: expected.shape)
        vae.decode(try ref.tensor("decode_in"), output: decoded)
        assertClose(decoded, expected, "vae-v2 decode")
    }
}
