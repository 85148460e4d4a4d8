import Foundation
import Kernels
import XCTest
@testable import Models

/// DeepCache's shallow pass (`UNetFeatureCache`) on tiny-sd1, whose down block 0 is a
/// CrossAttnDownBlock2D with two layers like SD 1.5's: the shallow pass enters the last up
/// block at resnet 1.
final class UNetFeatureCacheTests: XCTestCase {
    private func unet() throws -> UNet {
        try UNet(directory: FixturePaths.url("tiny-sd1/unet"), pool: .shared)
    }

    private func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var state = seed
        let values = (0..<Tensor.elementCount(shape)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
        }
        return Tensor(shape: shape, values: values)
    }

    /// Runs `unet` and returns the output and the names traced, in order.
    private func run(_ unet: UNet, _ sample: Tensor, _ t: Float, _ context: Tensor,
                     cache: UNetCacheStep?) -> (output: [Float], traced: [String]) {
        let out = Tensor(zeros: sample.shape)
        var names: [String] = []
        unet.forward(sample: sample, timesteps: Array(repeating: t, count: sample.shape[0]), context: context,
                     output: out, cache: cache) { name, _ in names.append(name) }
        return (out.toArray(), names)
    }

    func testShallowPassAfterFullPassOnTheSameInputReproducesIt() throws {
        let unet = try unet()
        let c = unet.config
        let sample = random([2, c.inChannels, 8, 8], seed: 1)
        let context = random([2, 7, c.crossAttentionDim], seed: 2)
        let plain = run(unet, sample, 500, context, cache: nil)
        let cache = UNetFeatureCache()
        let full = run(unet, sample, 500, context, cache: .full(cache))
        XCTAssertEqual(full.output, plain.output, "a full cache step is the plain forward pass")
        XCTAssertEqual(cache.batch, 2)
        // The kept feature stands for everything deeper, so on the same input the shallow pass
        // recomputes the same output: the skips it pops and the resnet it enters at line up.
        let shallow = run(unet, sample, 500, context, cache: .shallow(cache, firstRow: 0))
        let worst = zip(shallow.output, plain.output).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst, 1e-6)
        XCTAssertEqual(shallow.traced, ["time_embedding", "conv_in", "down_blocks.0.layer0", "up_blocks.1"])
        XCTAssertEqual(full.traced, ["time_embedding", "conv_in", "down_blocks.0", "down_blocks.1", "mid_block",
                                     "up_blocks.0", "up_blocks.1"])

        // Another input and timestep: the shallow pass follows them (it is no copy of the last output).
        let moved = random(sample.shape, seed: 3)
        let changed = run(unet, moved, 400, context, cache: .shallow(cache, firstRow: 0))
        XCTAssertGreaterThan(zip(changed.output, plain.output).map { abs($0 - $1) }.max() ?? 0, 1e-3)
        XCTAssertNotEqual(changed.output, run(unet, moved, 400, context, cache: nil).output,
                          "the shallow pass approximates, it is not the full pass")
    }

    func testConditionalRowOfAGuidedBatch() throws {
        let unet = try unet()
        let c = unet.config
        let sample = random([2, c.inChannels, 8, 8], seed: 4)
        let context = random([2, 7, c.crossAttentionDim], seed: 5)
        let cache = UNetFeatureCache()
        let full = run(unet, sample, 300, context, cache: .full(cache))
        // Batch 1 on row 1 (the conditional half of [uncond, cond]) reproduces that row.
        let row = sample.batches(1..<2), rowContext = context.batches(1..<2)
        let shallow = run(unet, row, 300, rowContext, cache: .shallow(cache, firstRow: 1))
        let half = full.output.count / 2
        let worst = zip(shallow.output, full.output[half...]).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst, 1e-6)
        cache.reset()
        XCTAssertEqual(cache.batch, 0)
    }
}
