import Foundation
import Kernels
import XCTest
@testable import Models

/// AutoencoderKL decode / encode against diffusers (tiny-sd1: 2 blocks, tiny-sd2: 3 blocks).
final class VAEReferenceTests: XCTestCase {
    private func check(_ model: String, factor: Int, scaling: Float) throws {
        let ref = try Reference(model)
        let vae = try VAE(directory: ref.folder.appendingPathComponent("vae"), pool: .shared)
        XCTAssertEqual(vae.downscaleFactor, factor)
        XCTAssertEqual(vae.config.scalingFactor, scaling)

        let expected = try ref.tensor("vae.decode_out")
        let image = Tensor(zeros: expected.shape)
        vae.decode(try ref.tensor("vae.decode_in"), output: image)
        assertClose(image, expected, "\(model) decode")

        // decodeScaled divides by the config's scaling factor first.
        let scaledIn = try ref.tensor("vae.decode_in")
        Kernels.scale(scaledIn, by: scaling, output: scaledIn, pool: .shared)
        let image2 = Tensor(zeros: expected.shape)
        vae.decodeScaled(scaledIn, output: image2)
        assertClose(image2, expected, "\(model) decodeScaled")

        let mean = try ref.tensor("vae.encode_mean"), std = try ref.tensor("vae.encode_std")
        let gotMean = Tensor(zeros: mean.shape), gotStd = Tensor(zeros: std.shape)
        try vae.encode(try ref.tensor("vae.encode_in"), mean: gotMean, std: gotStd)
        assertClose(gotMean, mean, "\(model) encode mean")
        assertClose(gotStd, std, "\(model) encode std")
    }

    func testTinySD1() throws { try check("tiny-sd1", factor: 2, scaling: 0.18215) }
    func testTinySD2() throws { try check("tiny-sd2", factor: 4, scaling: 0.13025) }
}
