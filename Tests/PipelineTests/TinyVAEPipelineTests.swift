import Foundation
import Kernels
import XCTest
@testable import Pipeline
import Models
import Sampling

/// `decoder: tiny` against diffusers, and step previews on the built-in model.
final class TinyVAEPipelineTests: XCTestCase {
    static var fixtures: URL { PipelineReferenceTests.fixtures }
    static var repository: URL { fixtures.deletingLastPathComponent().deletingLastPathComponent() }

    /// StableDiffusionPipeline(tiny-sd1, vae=AutoencoderTiny) (tools/fixtures/tiny_vae_refs.py):
    /// `decoder: tiny` decodes with `vae.decode(latents / 1.0)`.
    func testTinyDecoderMatchesDiffusers() throws {
        let folder = Self.fixtures.appendingPathComponent("tiny-taesd-x2")
        let model = ModelReference(path: Self.fixtures.appendingPathComponent("tiny-sd1"), tinyVAE: folder)
        let pipeline = try model.makePipeline(threads: 2)
        XCTAssertTrue(pipeline.hasTinyVAE)
        XCTAssertEqual(pipeline.previewMethod(for: GenerationRequest(prompt: "x", width: 32, height: 32, steps: 1,
                                                                     sampler: .euler, guidance: 7.5, seed: 0),
                                                  snapshotEvery: 1), .tinyVAE)
        let request = GenerationRequest(prompt: "a photo of a cat", width: 32, height: 32, steps: 6, sampler: .euler,
                                        guidance: 7.5, seed: 3, decoder: .tiny)
        let image = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
        let reference = try [UInt8](Data(contentsOf: folder.appendingPathComponent("pipeline-tiny-sd1.rgb")))
        XCTAssertEqual(image.pixels.count, reference.count)
        let worst = zip(image.pixels, reference).map { abs(Int($0) - Int($1)) }.max() ?? 255
        XCTAssertLessThanOrEqual(worst, 1, "worst pixel difference \(worst)/255")
        // The full decoder gives another image from the same latents.
        var full = request
        full.decoder = .full
        let fullImage = try pipeline.generate(full, snapshotEvery: 0) { _ in .proceed }
        XCTAssertNotEqual(fullImage.pixels, image.pixels)
    }

    func testTinyDecoderWithoutTinyVAEIsRefused() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.fixtures.appendingPathComponent("tiny-sd1"), threads: 1)
        XCTAssertFalse(pipeline.hasTinyVAE)
        let request = GenerationRequest(prompt: "x", width: 32, height: 32, steps: 2, sampler: .euler, guidance: 7.5,
                                        seed: 0, decoder: .tiny)
        XCTAssertThrowsError(try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }) { error in
            XCTAssertTrue("\(error)".contains("tiny_vae"), "\(error)")
        }
    }

    /// A tiny VAE with another factor than the model's VAE is refused when loaded.
    func testMismatchedTinyVAEIsRefused() throws {
        let model = ModelReference(path: Self.fixtures.appendingPathComponent("tiny-sd1"),
                                   tinyVAE: Self.fixtures.appendingPathComponent("tiny-taesd"))
        XCTAssertThrowsError(try model.makePipeline(threads: 1)) { error in
            XCTAssertTrue("\(error)".contains("factor 8") && "\(error)".contains("tiny-taesd"), "\(error)")
        }
    }

    /// Issue 16: on the built-in model with the shipped settings (euler_a, 25 steps, guidance 1.5)
    /// the previews show the picture: the last is the final image within 3/255 (mean absolute
    /// difference), and the one at half the steps is nearer the final image than flat grey.
    /// Its VAE draws the previews from `snapshots: 4` on (a decode costs 0.85 of a guided UNet step);
    /// at `snapshots: 1` the model's fitted linear map does, much further from the image.
    func testShapesPreviewsConvergeOnTheImage() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.repository.appendingPathComponent("models/shapes"), threads: 2)
        let request = GenerationRequest(prompt: "a red circle at the top left on a blue background", width: 64, height: 64,
                                        steps: 25, sampler: .eulerAncestral, guidance: 1.5, seed: 1)
        XCTAssertEqual(pipeline.previewMethod(for: request, snapshotEvery: 3), .latentRGB)
        XCTAssertEqual(pipeline.previewMethod(for: request, snapshotEvery: 4), .fullVAE)
        func meanDifference(_ a: [UInt8], _ b: [UInt8]) -> Double {
            Double(zip(a, b).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(max(a.count, 1))
        }
        func previews(every: Int) throws -> (image: RGBImage, previews: [Int: RGBImage]) {
            var previews: [Int: RGBImage] = [:]
            let image = try pipeline.generate(request, snapshotEvery: every) { event in
                if let preview = event.preview { previews[event.step] = preview }
                return .proceed
            }
            return (image, previews)
        }
        // Snapshot steps 4, 8, …: every other step too (the estimate does not depend on them).
        let (image, vaePreviews) = try previews(every: 4)
        XCTAssertEqual(vaePreviews.keys.sorted(), [4, 8, 12, 16, 20, 24])
        let grey = [UInt8](repeating: 128, count: image.pixels.count)
        let greyDifference = meanDifference(grey, image.pixels)
        let half = meanDifference(try XCTUnwrap(vaePreviews[12]).pixels, image.pixels)
        let (_, everyFive) = try previews(every: 5)
        let last = meanDifference(try XCTUnwrap(everyFive[25]).pixels, image.pixels)
        let (_, linear) = try previews(every: 1)
        let linearLast = meanDifference(try XCTUnwrap(linear[25]).pixels, image.pixels)
        print("shapes previews, mean |difference| from the image: last \(last)/255, step 12 \(half)/255, "
              + "flat grey \(greyDifference)/255; linear map at the last step \(linearLast)/255")
        XCTAssertLessThanOrEqual(last, 3)
        XCTAssertLessThan(half, greyDifference)
        XCTAssertLessThan(meanDifference(try XCTUnwrap(vaePreviews[4]).pixels, image.pixels), greyDifference)
        // The linear previews use the model's own fitted map (models/shapes/vae/latent_rgb.json,
        // tools/train/fit_latent_rgb.py), not Stable Diffusion's, and show more of the picture
        // than flat grey does.
        XCTAssertEqual(pipeline.latentRGBMap.factors.count, 4)
        XCTAssertNotEqual(pipeline.latentRGBMap, .sd)
        XCTAssertLessThan(linearLast, greyDifference)
    }

    /// Every sampler (epsilon prediction, sigma and alpha samplers): the last preview is the
    /// denoised estimate of the last model call, which every sampler's last step lands on
    /// (or, for the multistep ones, next to), so it is the final image within 3/255 (mean).
    func testLastPreviewIsTheImageForEverySampler() throws {
        let folder = Self.fixtures.appendingPathComponent("tiny-taesd-x2")
        let pipeline = try ModelReference(path: Self.fixtures.appendingPathComponent("tiny-sd1"), tinyVAE: folder)
            .makePipeline(threads: 2)
        for sampler in SamplerKind.allCases {
            let request = GenerationRequest(prompt: "a photo of a cat", width: 32, height: 32, steps: 8, sampler: sampler,
                                            guidance: 7.5, seed: 5, decoder: .tiny)
            var last: RGBImage?
            let image = try pipeline.generate(request, snapshotEvery: 1) { event in
                if event.step == event.totalSteps { last = event.preview }
                return .proceed
            }
            let preview = try XCTUnwrap(last, "\(sampler)")
            let mean = Double(zip(preview.pixels, image.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(image.pixels.count)
            XCTAssertLessThanOrEqual(mean, 3, "\(sampler): last preview \(mean)/255 from the image")
        }
    }

    /// The denoised estimate inverts x = √ᾱ·x₀ + √(1 − ᾱ)·ε for each prediction type, with ᾱ
    /// from the step's sigma (sigma samplers) or `alphas_cumprod[t]` (alpha samplers).
    func testDenoisedEstimateRecoversTheCleanSample() {
        let x0: [Float] = [0.5, -1.25, 2, 0], noise: [Float] = [1, -0.5, 0.25, -2]
        func check(_ estimate: DenoisedEstimate, stepIndex: Int, timestep: Float, alphaBar: Float) {
            let a = alphaBar.squareRoot(), b = (1 - alphaBar).squareRoot()
            let input = zip(x0, noise).map { a * $0 + b * $1 }
            let output: [Float]
            switch estimate.prediction {
            case .epsilon: output = noise
            case .vPrediction: output = zip(x0, noise).map { a * $1 - b * $0 }
            case .sample: output = x0
            }
            let result = Tensor(zeros: [4])
            input.withUnsafeBufferPointer { i in
                output.withUnsafeBufferPointer { o in
                    estimate.write(modelInput: i, modelOutput: o, stepIndex: stepIndex, timestep: timestep, into: result)
                }
            }
            for (got, want) in zip(result.toArray(), x0) {
                XCTAssertEqual(got, want, accuracy: 1e-4, "\(estimate.prediction) ᾱ \(alphaBar)")
            }
        }
        for prediction in [PredictionType.epsilon, .vPrediction, .sample] {
            let sigmaBased = DenoisedEstimate(prediction: prediction, sigmas: [14.6, 3, 0.5, 0], alphasCumprod: [])
            check(sigmaBased, stepIndex: 1, timestep: 700, alphaBar: 1 / (1 + 9))
            check(sigmaBased, stepIndex: 2, timestep: 200, alphaBar: 1 / 1.25)
            let alphaBased = DenoisedEstimate(prediction: prediction, sigmas: [], alphasCumprod: [0.99, 0.9, 0.6, 0.2])
            check(alphaBased, stepIndex: 0, timestep: 2, alphaBar: 0.6)
            check(alphaBased, stepIndex: 5, timestep: 1, alphaBar: 0.9)
        }
    }

    /// The linear map: SD's 4 channels to RGB, SDXL's with its bias, upscaled by the factor.
    func testLatentRGBMap() {
        XCTAssertEqual(LatentRGBMap.forVAE(latentChannels: 4, scalingFactor: 0.18215), .sd)
        XCTAssertEqual(LatentRGBMap.forVAE(latentChannels: 4, scalingFactor: 0.13025), .sdxl)
        let latents = Tensor(shape: [1, 4, 1, 2], values: [1, 0, 0, 0, 0, 0, 0, 1])
        let image = LatentRGBMap.sdxl.render(latents, factor: 2)
        XCTAssertEqual(image.width, 4)
        XCTAssertEqual(image.height, 2)
        // pixel (0, 0): channel 0 = 1 → rgb = [0.3651, 0.4232, 0.4341] + bias, then (x / 2 + 0.5) · 255.
        let expected = zip(LatentRGBMap.sdxl.factors[0], LatentRGBMap.sdxl.bias).map { ImageConversion.byte($0 + $1) }
        XCTAssertEqual(Array(image.pixels[0..<3]), expected)
        XCTAssertEqual(Array(image.pixels[12..<15]), expected, "row 1 repeats row 0")
        let second = zip(LatentRGBMap.sdxl.factors[3], LatentRGBMap.sdxl.bias).map { ImageConversion.byte($0 + $1) }
        XCTAssertEqual(Array(image.pixels[6..<9]), second)
    }
}
