import Foundation
import XCTest
@testable import Pipeline
import Sampling

/// Inpainting against diffusers' `StableDiffusionInpaintPipeline` (Tests/Fixtures/inpaint,
/// tools/fixtures/inpaint_refs.py): the tiny 9-channel inpainting UNet and tiny-sd1's
/// 4-channel UNet (masked img2img), Euler and DPM++ 2M at strength 1 and below, DDIM and Heun
/// on the 4-channel path; the image within 1/255, the final latents within 1e-4.
final class InpaintReferenceTests: XCTestCase {
    struct Case: Decodable {
        var id: String
        var model: String
        var sampler: String
        var steps: Int
        var strength: Double
        var seed: UInt64
        var prompt: String
        var negative_prompt: String
        var width: Int
        var height: Int
        var guidance: Float
        var image: String
        var latents: String
    }
    struct Index: Decodable {
        var mask: String
        var init_rgb: String
        var cases: [Case]
    }

    static let fixtures = PipelineReferenceTests.fixtures

    func testMatchesDiffusersInpaintingOnBothUNets() throws {
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("inpaint/index.json")))
        XCTAssertEqual(index.cases.count, 10)
        XCTAssertEqual(Set(index.cases.map(\.model)), ["tiny-sd1", "tiny-sd1-inpaint"])
        let mask = try ReferenceChecks.bytes(index.mask)
        let initImage = RGBImage(width: 32, height: 32, pixels: try ReferenceChecks.bytes(index.init_rgb))
        var pipelines: [String: TextToImagePipeline] = [:]
        for item in index.cases {
            let pipeline = try pipelines[item.model] ?? TextToImagePipeline(modelDirectory: Self.fixtures.appendingPathComponent(item.model), threads: 2)
            pipelines[item.model] = pipeline
            let request = GenerationRequest(prompt: item.prompt, negativePrompt: item.negative_prompt, width: item.width,
                                            height: item.height, steps: item.steps,
                                            sampler: try XCTUnwrap(SamplerKind(rawValue: item.sampler)), guidance: item.guidance,
                                            seed: item.seed, initImage: initImage, strength: item.strength, mask: mask)
            let latents = try pipeline.denoisedLatents(request, snapshotEvery: 0) { _ in .proceed }.toArray()
            try ReferenceChecks.assertLatents(latents, match: item.latents, item.id)
            let image = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
            try ReferenceChecks.assertImage(image.pixels, matches: item.image, item.id)
        }
    }

    /// An inpainting UNet cannot run without a mask; a mask needs a picture.
    func testInpaintingModelNeedsMaskAndMaskNeedsPicture() throws {
        let inpainting = try TextToImagePipeline(modelDirectory: Self.fixtures.appendingPathComponent("tiny-sd1-inpaint"), threads: 1)
        let plain = GenerationRequest(prompt: "x", width: 32, height: 32, steps: 2, sampler: .euler, guidance: 5, seed: 1)
        XCTAssertThrowsError(try inpainting.generate(plain, snapshotEvery: 0) { _ in .proceed }) {
            XCTAssertTrue("\($0)".contains("inpainting UNet (9 input channels)"), "\($0)")
        }
        var masked = plain
        masked.mask = [UInt8](repeating: 255, count: 32 * 32)
        XCTAssertThrowsError(try inpainting.generate(masked, snapshotEvery: 0) { _ in .proceed }) {
            XCTAssertTrue("\($0)".contains("a mask needs an init image"), "\($0)")
        }
    }
}
