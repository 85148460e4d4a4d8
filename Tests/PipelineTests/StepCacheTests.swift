import Foundation
import XCTest
@testable import Models
@testable import Pipeline
import Sampling

/// `cache: N` (DeepCache, issue 16): 1 is the exact pipeline bit for bit; N > 1 runs the deep
/// blocks on evaluations 0, N, 2N, … only, and changes the image a little.
final class StepCacheTests: XCTestCase {
    /// For each UNet call of one generation: whether the mid block ran, and the batch.
    private func deepCalls(_ pipeline: TextToImagePipeline, _ request: GenerationRequest) throws -> (deep: [Bool], batch: [Int], image: RGBImage) {
        var deep: [Bool] = [], batch: [Int] = []
        pipeline.unet.observer = { name, tensor in
            if name == "time_embedding" { deep.append(false); batch.append(tensor.shape[0]) }
            if name == "mid_block", !deep.isEmpty { deep[deep.count - 1] = true }
        }
        defer { pipeline.unet.observer = nil }
        let image = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
        return (deep, batch, image)
    }

    func testCacheOneIsExactAndCacheTwoSkipsTheDeepBlocksEveryOtherEvaluation() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: PipelineReferenceTests.fixtures.appendingPathComponent("tiny-sd1"), threads: 2)
        var request = GenerationRequest(prompt: "a red circle", width: 64, height: 64, steps: 7, sampler: .euler,
                                        guidance: 7.5, seed: 3)
        let exact = try deepCalls(pipeline, request)
        XCTAssertEqual(exact.deep, Array(repeating: true, count: 7))

        request.cache = 1
        let one = try deepCalls(pipeline, request)
        XCTAssertEqual(one.deep, exact.deep)
        XCTAssertEqual(one.image, exact.image, "cache: 1 is bit-identical to no cache")
        request.cache = nil
        let exactLatents = try pipeline.denoisedLatents(request, snapshotEvery: 0) { _ in .proceed }.toArray()
        request.cache = 1
        XCTAssertEqual(try pipeline.denoisedLatents(request, snapshotEvery: 0) { _ in .proceed }.toArray(), exactLatents)

        request.cache = 2
        let two = try deepCalls(pipeline, request)
        XCTAssertEqual(two.deep, [true, false, true, false, true, false, true])
        XCTAssertEqual(two.batch, Array(repeating: 2, count: 7))
        let cachedLatents = try pipeline.denoisedLatents(request, snapshotEvery: 0) { _ in .proceed }.toArray()
        let moved = zip(cachedLatents, exactLatents).map { abs($0 - $1) }.max() ?? 0
        XCTAssertGreaterThan(moved, 1e-4, "caching approximates")

        request.cache = 3
        XCTAssertEqual(try deepCalls(pipeline, request).deep, [true, false, false, true, false, false, true])

        // With guidance_cutoff the batch drops to the conditional row after evaluation
        // int(7 × 0.4) = 2; the shallow evaluations after it reuse the kept conditional row.
        request.cache = 2
        request.guidanceCutoff = 0.4
        let both = try deepCalls(pipeline, request)
        XCTAssertEqual(both.batch, [2, 2, 2, 1, 1, 1, 1])
        XCTAssertEqual(both.deep, [true, false, true, false, true, false, true])

        // A second image of the same pipeline starts with a full pass again (reset per image).
        XCTAssertEqual(try deepCalls(pipeline, request).deep.first, true)
    }
}
