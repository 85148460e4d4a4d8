import Foundation
import XCTest
@testable import Pipeline
import Sampling

/// Hires fix against the two diffusers passes built by hand in tools/fixtures/hires_refs.py
/// (Tests/Fixtures/hires): text-to-image, Pillow LANCZOS upscale, img2img with the same seed;
/// the final image within 1/255, for ×1.5 (Euler) and ×2 on a non-square size (DPM++ 2M).
final class HiresFixReferenceTests: XCTestCase {
    struct Case: Decodable {
        var id: String
        var sampler: String
        var steps: Int
        var upscale: Double
        var upscale_strength: Double
        var seed: UInt64
        var width: Int
        var height: Int
        var final_width: Int
        var final_height: Int
        var prompt: String
        var negative_prompt: String
        var guidance: Float
        var image: String
        var first_pass: String
    }
    struct Index: Decodable { var cases: [Case] }

    func testMatchesTheTwoDiffusersPasses() throws {
        let fixtures = PipelineReferenceTests.fixtures
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: fixtures.appendingPathComponent("hires/index.json")))
        XCTAssertEqual(index.cases.count, 2)
        let pipeline = try TextToImagePipeline(modelDirectory: fixtures.appendingPathComponent("tiny-sd1"), threads: 2)
        for item in index.cases {
            var request = GenerationRequest(prompt: item.prompt, negativePrompt: item.negative_prompt, width: item.width,
                                            height: item.height, steps: item.steps,
                                            sampler: try XCTUnwrap(SamplerKind(rawValue: item.sampler)), guidance: item.guidance,
                                            seed: item.seed)
            let first = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
            try ReferenceChecks.assertImage(first.pixels, matches: item.first_pass, "\(item.id): pass 1")
            request.hires = HiresFix(scale: item.upscale, strength: item.upscale_strength)
            XCTAssertTrue(HiresFix(scale: item.upscale, strength: 0).targetSize(width: item.width, height: item.height)
                          == (item.final_width, item.final_height))
            var passes: [Int] = []
            let image = try pipeline.generate(request, snapshotEvery: 0) { event in
                if event.step == 1 { passes.append(event.totalSteps) }
                return .proceed
            }
            XCTAssertEqual(passes.count, 2, "two passes report their steps")
            XCTAssertEqual(image.width, item.final_width)
            XCTAssertEqual(image.height, item.final_height)
            try ReferenceChecks.assertImage(image.pixels, matches: item.image, item.id)
        }
    }
}
