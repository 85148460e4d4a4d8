import Foundation
import Kernels
import XCTest
@testable import Models

/// Models with 16-bit weights (issue 15): tiny-sd1 saved in fp16 and bf16 by
/// tools/fixtures/half_refs.py, kept as stored (views of the file mapping), narrowed from
/// fp32 at load (`weights: f16`), or widened (`weights: f32`).
final class HalfWeightsTests: XCTestCase {
    private func unetOutput(_ unet: UNet, _ ref: SafeTensorsFile) throws -> Tensor {
        func tensor(_ name: String) throws -> Tensor {
            let info = try XCTUnwrap(ref.tensors[name])
            return Tensor(shape: info.shape, values: try ref.floats(name))
        }
        let latents = try tensor("latents")
        let out = Tensor(zeros: latents.shape)
        unet(sample: latents, timestep: 500, context: try tensor("encoder_states"), output: out)
        return out
    }

    func testStoredHalfUNetMatchesDiffusersOnTheWidenedWeights() throws {
        let ref = try SafeTensorsFile(path: FixturePaths.url("half/tiny-sd1-f16-unet.safetensors").path)
        let expected = Tensor(shape: try XCTUnwrap(ref.tensors["out"]).shape, values: try ref.floats("out"))
        let folder = FixturePaths.url("tiny-sd1-f16/unet")
        let stored = try UNet(directory: folder, weights: .stored, pool: .shared)
        // Kept as stored: 16-bit views of the mapping, not copies (fused Q/K/V excepted).
        let convIn = stored.weights.convIn.weight
        XCTAssertEqual(convIn.halfFormat, .f16)
        if case .half(let storage, _) = convIn.storage { XCTAssertFalse(storage.isOwned, "conv_in should point into the file") }
        let got = try unetOutput(stored, ref)
        assertClose(got, expected, "f16 UNet vs diffusers (fp32 compute on the f16 weights)")
        // The same folder widened at load computes the same fp32 products: the same numbers.
        // Loaded with the AVX-512 kernels off so that its linear weights stay unpacked: the
        // packed product (PackedLinearTests) sums in another order than the sgemm the 16-bit
        // weights are widened for, and this test is about the widening.
        let saved = CPUFeatures.useAVX512Kernels
        CPUFeatures.useAVX512Kernels = false
        let widened = try UNet(directory: folder, weights: .f32, pool: .shared)
        CPUFeatures.useAVX512Kernels = saved
        XCTAssertNil(widened.weights.convIn.weight.halfFormat)
        let reference = try unetOutput(widened, ref)
        XCTAssertEqual(got.toArray(), reference.toArray(), "16-bit kernels vs fp32 kernels on the widened weights")
    }

    func testNarrowingAnFP32FolderGivesTheBitsTorchHalfGives() throws {
        // tiny-sd1 (fp32) with weights: f16 must hold exactly tiny-sd1-f16's values: layer
        // weights as halves, biases and norms as half values kept in fp32.
        let narrowed = try UNet(directory: FixturePaths.url("tiny-sd1/unet"), weights: .f16, pool: .shared)
        let stored = try UNet(directory: FixturePaths.url("tiny-sd1-f16/unet"), weights: .stored, pool: .shared)
        var compared = 0, halves = 0
        for name in stored.parameters.names {
            let a = try XCTUnwrap(narrowed.parameters[name]), b = try XCTUnwrap(stored.parameters[name])
            XCTAssertEqual(a.halfFormat, b.halfFormat, name)
            if a.halfFormat != nil { halves += 1 }
            XCTAssertEqual(a.toArray().map(\.bitPattern), b.toArray().map(\.bitPattern), name)
            compared += 1
        }
        XCTAssertGreaterThan(compared, 100)
        XCTAssertGreaterThan(halves, 40, "every linear and conv weight is kept in 16 bits")
        // Norms and biases stay fp32 (holding the f16 file's values).
        XCTAssertNil(stored.parameters["conv_in.bias"]?.halfFormat)
        XCTAssertNotNil(stored.parameters["conv_in.bias"])
        // An fp32 folder stays fp32 unless asked.
        let plain = try UNet(directory: FixturePaths.url("tiny-sd1/unet"), weights: .stored, pool: .shared)
        XCTAssertNil(plain.weights.convIn.weight.halfFormat)
    }

    func testRandomHalfWeightsAreTheRoundedFP32Ones() throws {
        // The bench's f16 weights are made in half directly; they must be the fp32 ones rounded.
        let half = RandomWeightSource(seed: 5, precision: .f16, pool: .shared)
        let full = RandomWeightSource(seed: 5, precision: .f32, pool: .shared)
        for (name, shape) in [("a.weight", [70, 33]), ("b.weight", [8, 4, 3, 3]), ("token_embedding.weight", [50, 16])] {
            let h = try half.weight(name, shape, alternatives: [])
            let f = try full.weight(name, shape, alternatives: [])
            XCTAssertEqual(h.halfFormat, .f16, name)
            XCTAssertNil(f.halfFormat, name)
            XCTAssertEqual(h.toArray().map(\.bitPattern), f.toArray().map { Float(Float16($0)).bitPattern }, name)
        }
        // Biases: 0, exact in either.
        XCTAssertEqual(try half.tensor("c.bias", [7], alternatives: []).toArray(), [Float](repeating: 0, count: 7))
    }

    func testBF16FolderIsKeptInBF16AndNarrowingLeavesItAlone() throws {
        for weights in [WeightPrecision.stored, .f16] {
            let unet = try UNet(directory: FixturePaths.url("tiny-sd1-bf16/unet"), weights: weights, pool: .shared)
            XCTAssertEqual(unet.weights.convIn.weight.halfFormat, .bf16, "\(weights)")
        }
        let text = try CLIPTextEncoder(directory: FixturePaths.url("tiny-sd1-bf16/text_encoder"), weights: .stored, pool: .shared)
        XCTAssertEqual(text.layers[0].qkv.weight.halfFormat, .bf16, "fused Q/K/V keeps the parts' format")
        XCTAssertEqual(text.layers[0].fc1.weight.halfFormat, .bf16)
    }
}
