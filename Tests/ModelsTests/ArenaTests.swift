import Foundation
import Kernels
import XCTest
@testable import Models

/// The activation arena: a repeated pass allocates nothing new, and two models sharing it
/// (UNet and VAE decoder) cost the larger of their needs, not the sum.
final class ArenaTests: XCTestCase {
    /// One "forward pass": reset, then carve tensors of `sizes` floats, all live at once.
    private func pass(_ arena: Arena, _ sizes: [Int]) -> [Tensor] {
        arena.reset()
        return sizes.map { arena.tensor([$0]) }
    }

    func testSharedArenaHoldsTheLargerPassNotTheSum() {
        let arena = Arena(minimumChunk: 1000)
        let small = [300, 300, 300, 300, 300]        // "UNet": 1500 floats in 1000-float chunks
        let large = [2400, 2400, 100]                // "VAE": tensors larger than those chunks
        _ = pass(arena, small)
        XCTAssertEqual(arena.capacity, 2000)
        _ = pass(arena, large)
        // The small chunks were free and too small: replaced, not kept beside the large ones.
        // Two 2400-float chunks and one of the minimum 1000 for the 100 (padded to 112).
        XCTAssertEqual(arena.capacity, 2400 + 2400 + 1000)
        let capacity = arena.capacity
        // Alternating passes now allocate nothing.
        for _ in 0..<3 {
            _ = pass(arena, small)
            _ = pass(arena, large)
            XCTAssertEqual(arena.capacity, capacity)
        }
        XCTAssertEqual(capacity, 5800, "the small pass fits in the large pass's chunks: not 2000 + 5800")
    }

    func testTensorsOfOnePassDoNotOverlap() {
        let arena = Arena(minimumChunk: 64)
        _ = pass(arena, [16, 16, 16])
        let ts = pass(arena, [40, 100, 8, 30])
        for (i, t) in ts.enumerated() { t.fill(Float(i)) }
        for (i, t) in ts.enumerated() { XCTAssertTrue(t.toArray().allSatisfy { $0 == Float(i) }, "tensor \(i) was overwritten") }
    }
}

/// The pipeline's UNet and VAE share one arena (StableDiffusionModel wires it).
final class SharedWorkspaceTests: XCTestCase {
    func testUNetAndVAEShareOneWorkspace() throws {
        let model = try StableDiffusionModel(directory: FixturePaths.url("tiny-sd1"), weights: .stored, pool: .shared)
        let latents = Tensor(zeros: [2, 4, 8, 8])
        let context = Tensor(zeros: [2, 77, model.unet.config.crossAttentionDim])
        let out = Tensor(zeros: latents.shape)
        let f = model.vae.downscaleFactor
        let image = Tensor(zeros: [1, 3, 8 * f, 8 * f])
        model.unet(sample: latents, timestep: 10, context: context, output: out)
        model.vae.decode(latents.batches(0..<1), output: image)
        let shared = model.unet.workspaceBytes
        XCTAssertEqual(model.vae.workspaceBytes, shared, "one arena")
        for _ in 0..<2 {
            model.unet(sample: latents, timestep: 10, context: context, output: out)
            model.vae.decode(latents.batches(0..<1), output: image)
        }
        XCTAssertEqual(model.unet.workspaceBytes, shared, "alternating passes allocate nothing new")
    }
}
