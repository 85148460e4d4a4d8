import Foundation
import Kernels
import XCTest
@testable import Models

/// AutoencoderTiny decode / encode against diffusers (Tests/Fixtures/tiny-taesd: TAESD's
/// structure at 16 channels, made by tools/fixtures/tiny_vae_refs.py).
final class TinyVAEReferenceTests: XCTestCase {
    private func load() throws -> (TinyVAE, Reference) {
        let ref = try Reference("tiny-taesd")
        return (try TinyVAE(directory: ref.folder, pool: .shared), ref)
    }

    func testConfig() throws {
        let (vae, _) = try load()
        XCTAssertEqual(vae.downscaleFactor, 8)
        XCTAssertEqual(vae.config.encoderDownscaleFactor, 8)
        XCTAssertEqual(vae.config.numEncoderBlocks, [1, 3, 3, 3])
        XCTAssertEqual(vae.config.numDecoderBlocks, [3, 3, 3, 1])
        XCTAssertEqual(vae.config.scalingFactor, 1)
        XCTAssertEqual(vae.config.latentMagnitude, 3)
        XCTAssertEqual(vae.config.latentShift, 0.5)
        XCTAssertEqual(TinyVAEConfig.taesd.decoderBlockOutChannels, [64, 64, 64, 64])
    }

    func testDecode() throws {
        let (vae, ref) = try load()
        let expected = try ref.tensor("decode_out")
        let image = Tensor(zeros: expected.shape)
        vae.decode(try ref.tensor("decode_in"), output: image)
        assertClose(image, expected, "tiny-taesd decode")
        // Scaling 1: decodeScaled is decode; a second call reuses the arena.
        let capacity = vae.workspaceBytes
        let again = Tensor(zeros: expected.shape)
        vae.decodeScaled(try ref.tensor("decode_in"), output: again)
        assertClose(again, expected, "tiny-taesd decodeScaled")
        XCTAssertEqual(vae.workspaceBytes, capacity, "no new activation memory on the second call")
    }

    func testEncode() throws {
        let (vae, ref) = try load()
        let expected = try ref.tensor("encode_out")
        let latents = Tensor(zeros: expected.shape)
        vae.encode(try ref.tensor("encode_in"), latents: latents)
        assertClose(latents, expected, "tiny-taesd encode")
        let again = Tensor(zeros: expected.shape)
        vae.encodeScaled(try ref.tensor("encode_in"), latents: again)
        assertClose(again, expected, "tiny-taesd encodeScaled")
    }

    /// A config that does not match the weights fails naming the tensors; an AutoencoderKL
    /// folder is refused naming the class.
    func testErrorsNameTensorAndField() throws {
        let ref = try Reference("tiny-taesd")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-vae-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = try FixturePaths.json("tiny-taesd/config.json")
        config["num_decoder_blocks"] = [3, 3, 3, 2]
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: ref.folder.appendingPathComponent("diffusion_pytorch_model.safetensors"),
                                         to: dir.appendingPathComponent("diffusion_pytorch_model.safetensors"))
        XCTAssertThrowsError(try TinyVAE(directory: dir, pool: .shared)) { error in
            XCTAssertTrue("\(error)".contains("decoder.layers.18"), "\(error)")
        }
        XCTAssertThrowsError(try TinyVAE(directory: FixturePaths.url("tiny-sd1/vae"), pool: .shared)) { error in
            XCTAssertTrue("\(error)".contains("_class_name") && "\(error)".contains("AutoencoderKL"), "\(error)")
        }
    }

    /// TAESD's real shapes from random weights: finite output, FLOP counts that add up.
    func testRandomTAESD() throws {
        let vae = try TinyVAE.randomWeights(config: .taesd, seed: 1, pool: .shared)
        let latents = Tensor(shape: [1, 4, 4, 6], values: (0..<96).map { Float($0 % 7) - 3 })
        let image = Tensor(zeros: [1, 3, 32, 48])
        vae.decode(latents, output: image)
        XCTAssertTrue(image.toArray().allSatisfy(\.isFinite))
        // conv_in + 10 blocks of 3 convs + 3 stage convs + conv_out, 64 channels, 3×3.
        let perPixel = 2.0 * 64 * 9
        var expected = perPixel * 4 * 24                       // conv_in at 4×6
        var pixels = 24.0
        for (stage, blocks) in [3, 3, 3, 1].enumerated() {
            expected += Double(blocks) * 3 * perPixel * 64 * pixels
            if stage < 3 { pixels *= 4; expected += perPixel * 64 * pixels } else { expected += perPixel * 3 * pixels }
        }
        XCTAssertEqual(vae.decodeFlops(batch: 1, height: 4, width: 6), expected, accuracy: 1)
        let back = Tensor(zeros: [1, 4, 4, 6])
        vae.encode(image, latents: back)
        XCTAssertTrue(back.toArray().allSatisfy(\.isFinite))
        XCTAssertGreaterThan(vae.encodeFlops(batch: 1, height: 32, width: 48), 0)
    }
}
