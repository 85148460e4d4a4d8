import Foundation
import XCTest
@testable import Pipeline
import Sampling

/// Image-to-image against diffusers' `StableDiffusionImg2ImgPipeline` on the tiny SD1-like
/// model (Tests/Fixtures/img2img, tools/fixtures/img2img_refs.py): every sampler, two strengths
/// for Euler and DPM++ 2M, a non-square size; the image within 1/255 and the final latents
/// within 1e-4 of their largest value.
final class Img2ImgReferenceTests: XCTestCase {
    struct Case: Decodable {
        var id: String
        var sampler: String
        var steps: Int
        var strength: Double
        var seed: UInt64
        var prompt: String
        var negative_prompt: String
        var width: Int
        var height: Int
        var guidance: Float
        var init_rgb: String
        var image: String
        var latents: String
        var evaluated_timesteps: [Float]
    }
    struct Index: Decodable { var cases: [Case] }

    static let fixtures = PipelineReferenceTests.fixtures

    func request(_ item: Case) throws -> GenerationRequest {
        GenerationRequest(prompt: item.prompt, negativePrompt: item.negative_prompt, width: item.width, height: item.height,
                          steps: item.steps, sampler: try XCTUnwrap(SamplerKind(rawValue: item.sampler)),
                          guidance: item.guidance, seed: item.seed,
                          initImage: RGBImage(width: item.width, height: item.height, pixels: try ReferenceChecks.bytes(item.init_rgb)),
                          strength: item.strength)
    }

    func testMatchesDiffusersImg2ImgForEverySampler() throws {
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("img2img/index.json")))
        XCTAssertEqual(index.cases.count, 13)
        XCTAssertEqual(Set(index.cases.map(\.sampler)).count, SamplerKind.allCases.count, "every sampler has a case")
        let pipeline = try TextToImagePipeline(modelDirectory: Self.fixtures.appendingPathComponent("tiny-sd1"), threads: 2)
        for item in index.cases {
            let request = try request(item)
            var evaluations = 0
            let latents = try pipeline.denoisedLatents(request, snapshotEvery: 0) { event in
                evaluations = event.totalSteps
                return .proceed
            }.toArray()
            XCTAssertEqual(evaluations, item.evaluated_timesteps.count, "\(item.id): evaluations after the start step")
            try ReferenceChecks.assertLatents(latents, match: item.latents, item.id)
            let image = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
            try ReferenceChecks.assertImage(image.pixels, matches: item.image, item.id)
        }
    }

    /// The strength decides where the schedule starts: the same seed at another strength, or
    /// from another picture, is another image.
    func testStrengthAndPictureChangeTheImage() throws {
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("img2img/index.json")))
        let item = try XCTUnwrap(index.cases.first { $0.id == "euler-10-s0.5-32x32" })
        let pipeline = try TextToImagePipeline(modelDirectory: Self.fixtures.appendingPathComponent("tiny-sd1"), threads: 2)
        var request = try request(item)
        let base = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
        request.strength = 0.75
        XCTAssertNotEqual(try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }.pixels, base.pixels)
        request.strength = 0.5
        request.initImage = RGBImage(width: 32, height: 32, pixels: [UInt8](repeating: 200, count: 32 * 32 * 3))
        XCTAssertNotEqual(try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }.pixels, base.pixels)
    }

    /// diffusers refuses a strength that leaves no step; so does the pipeline, saying why.
    func testStrengthLeavingNoStepIsRefused() throws {
        XCTAssertEqual(try TextToImagePipeline.img2imgStartStep(steps: 10, strength: 0.5), 5)
        XCTAssertEqual(try TextToImagePipeline.img2imgStartStep(steps: 10, strength: 1), 0)
        XCTAssertEqual(try TextToImagePipeline.img2imgStartStep(steps: 3, strength: 0.34), 2)
        XCTAssertThrowsError(try TextToImagePipeline.img2imgStartStep(steps: 10, strength: 0.05)) { error in
            XCTAssertTrue("\(error)".contains("leaves no step"), "\(error)")
        }
        XCTAssertThrowsError(try TextToImagePipeline.img2imgStartStep(steps: 10, strength: 1.5))
    }
}
