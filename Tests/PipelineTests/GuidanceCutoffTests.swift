import Foundation
import XCTest
@testable import Pipeline
import Sampling

/// `guidance_cutoff` (issue 16) against diffusers' documented dynamic-CFG callback recipe
/// (Tests/Fixtures/guidance-cutoff, tools/fixtures/guidance_cutoff_refs.py): the image within
/// 1/255 and the final latents within 1e-4 of their largest value, for Euler, Heun (whose 2N−1
/// evaluations fix what the fraction counts) and DPM++ 2M.
final class GuidanceCutoffTests: XCTestCase {
    struct Case: Decodable {
        var id: String
        var model: String
        var sampler: String
        var steps: Int
        var cutoff: Double
        var seed: UInt64
        var prompt: String
        var negative_prompt: String
        var width: Int
        var height: Int
        var guidance: Float
        var image: String
        var latents: String
        var max_abs_difference_from_exact: Int
    }
    struct Index: Decodable { var cases: [Case] }

    func testCutoffMatchesDiffusersCallbackRecipe() throws {
        let fixtures = PipelineReferenceTests.fixtures
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: fixtures.appendingPathComponent("guidance-cutoff/index.json")))
        XCTAssertEqual(index.cases.count, 3)
        let pipeline = try TextToImagePipeline(modelDirectory: fixtures.appendingPathComponent("tiny-sd1"), threads: 2)
        for item in index.cases {
            var request = GenerationRequest(prompt: item.prompt, negativePrompt: item.negative_prompt, width: item.width,
                                            height: item.height, steps: item.steps,
                                            sampler: try XCTUnwrap(SamplerKind(rawValue: item.sampler)), guidance: item.guidance,
                                            seed: item.seed, guidanceCutoff: item.cutoff)
            let latents = try pipeline.denoisedLatents(request, snapshotEvery: 0) { _ in .proceed }.toArray()
            try ReferenceChecks.assertLatents(latents, match: item.latents, item.id)
            let image = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
            try ReferenceChecks.assertImage(image.pixels, matches: item.image, item.id)
            let reference = try ReferenceChecks.bytes(item.image)

            // Without the cutoff the image is diffusers' exact one, which the fixture shows differs.
            request.guidanceCutoff = nil
            let exact = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
            let exactDifference = zip(exact.pixels, reference).map { abs(Int($0) - Int($1)) }.max() ?? 0
            XCTAssertGreaterThan(item.max_abs_difference_from_exact, 1, item.id)
            XCTAssertGreaterThan(exactDifference, 1, "\(item.id): the cutoff must change the image")
        }
    }
}
