import Foundation
import XCTest
@testable import Pipeline
import Sampling
import Models

/// Level 3 of docs/ARCHITECTURE.md for the whole pipeline: images from diffusers'
/// StableDiffusionPipeline on the tiny SD1-like (epsilon) and SD2-like (v-prediction)
/// fixture models, recorded by tools/fixtures/pipeline_refs.py for every sampler and
/// schedule, square and non-square sizes, guidance 1 and prompts over 77 tokens.
final class PipelineReferenceTests: XCTestCase {
    struct Case: Decodable {
        var id: String
        var model: String
        var sampler: String
        var schedule: String
        var height: Int
        var width: Int
        var steps: Int
        var guidance: Float
        var seed: UInt64
        var prompt: String
        var negative_prompt: String?
        var image: String
        /// Single-file cases only: the prediction override given, and the one diffusers used.
        var prediction: String?
        var prediction_type: String?

        /// The generation request this case describes.
        func request() throws -> GenerationRequest {
            GenerationRequest(
                prompt: prompt, negativePrompt: negative_prompt ?? "", width: width, height: height,
                steps: steps, sampler: try XCTUnwrap(SamplerKind(rawValue: sampler)),
                schedule: try XCTUnwrap(ScheduleKind(rawValue: schedule)), guidance: guidance, seed: seed)
        }
    }
    struct Index: Decodable { var cases: [Case] }

    static var fixtures: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")
    }

    func testImagesMatchDiffusersWithinOneLevel() throws {
        // index.json is written by Python's json module, which spells -inf as -Infinity.
        let text = try String(contentsOf: Self.fixtures.appendingPathComponent("pipeline/index.json"), encoding: .utf8)
        let data = Data(text.replacingOccurrences(of: "-Infinity", with: "null").utf8)
        let index = try JSONDecoder().decode(Index.self, from: data)
        XCTAssertGreaterThanOrEqual(index.cases.count, 40)
        var pipelines: [String: TextToImagePipeline] = [:]
        var failures = 0
        var worstOverall = 0
        for item in index.cases {
            let pipeline: TextToImagePipeline
            if let cached = pipelines[item.model] {
                pipeline = cached
            } else {
                pipeline = try TextToImagePipeline(modelDirectory: Self.fixtures.appendingPathComponent(item.model), threads: 2)
                pipelines[item.model] = pipeline
            }
            let request = try item.request()
            var events = 0
            let image = try pipeline.generate(request, snapshotEvery: 0) { event in
                events += 1
                XCTAssertNil(event.preview)
                return .proceed
            }
            XCTAssertGreaterThanOrEqual(events, item.steps, item.id)
            let reference = try [UInt8](Data(contentsOf: Self.fixtures.appendingPathComponent(item.image)))
            XCTAssertEqual(image.width, item.width, item.id)
            XCTAssertEqual(image.height, item.height, item.id)
            guard image.pixels.count == reference.count else {
                failures += 1
                XCTFail("\(item.id): \(image.pixels.count) bytes, reference \(reference.count)")
                continue
            }
            let worst = zip(image.pixels, reference).map { abs(Int($0) - Int($1)) }.max() ?? 0
            worstOverall = max(worstOverall, worst)
            if worst > 1 {
                failures += 1
                let off = zip(image.pixels, reference).filter { abs(Int($0) - Int($1)) > 1 }.count
                XCTFail("\(item.id): \(off) of \(reference.count) values differ by more than 1 (worst \(worst))")
            }
        }
        print("pipeline references: \(index.cases.count) cases, worst pixel difference \(worstOverall)/255")
        XCTAssertEqual(failures, 0, "cases over 1/255: \(failures); worst difference \(worstOverall)")
    }

    func testCancelStopsBetweenSteps() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.fixtures.appendingPathComponent("tiny-sd1"), threads: 1)
        let request = GenerationRequest(prompt: "a photo of a cat", width: 32, height: 32, steps: 5,
                                        sampler: .eulerAncestral, guidance: 7.5, seed: 3)
        var seen: [Int] = []
        XCTAssertThrowsError(try pipeline.generate(request, snapshotEvery: 2) { event in
            seen.append(event.step)
            if event.step == 2 {
                XCTAssertEqual(event.preview?.width, 32)
                XCTAssertEqual(event.preview?.height, 32)
            } else {
                XCTAssertNil(event.preview)
            }
            return event.step == 3 ? .cancel : .proceed
        }) { error in
            XCTAssertEqual((error as? GenerationCancelled)?.step, 3)
        }
        XCTAssertEqual(seen, [1, 2, 3])
    }

    /// The same request twice gives the same image (no state leaks between calls); the
    /// philox generator and another seed give different ones.
    func testSeedsReproduceAndGeneratorsDiffer() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.fixtures.appendingPathComponent("tiny-sd2"), threads: 1)
        var request = GenerationRequest(prompt: "portrait of an old sailor", width: 24, height: 40, steps: 4,
                                        sampler: .dpmpp2mSDE, schedule: .karras, guidance: 5, seed: 77)
        let first = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
        let again = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
        XCTAssertEqual(first, again)
        request.rng = .philox
        let philox = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
        XCTAssertNotEqual(first.pixels, philox.pixels)
        request.rng = .cpu
        request.seed = 78
        let other = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
        XCTAssertNotEqual(first.pixels, other.pixels)
    }

    func testScheduleTheSamplerLacksIsAnError() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.fixtures.appendingPathComponent("tiny-sd1"), threads: 1)
        let request = GenerationRequest(prompt: "x", width: 32, height: 32, steps: 2, sampler: .eulerAncestral,
                                        schedule: .karras, guidance: 7.5, seed: 1)
        XCTAssertThrowsError(try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }) { error in
            XCTAssertTrue("\(error)".contains("euler_a") && "\(error)".contains("karras"), "\(error)")
        }
    }

    func testBadSizeIsAnError() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.fixtures.appendingPathComponent("tiny-sd1"), threads: 1)
        let request = GenerationRequest(prompt: "x", width: 31, height: 32, steps: 2, sampler: .euler, guidance: 7.5, seed: 1)
        XCTAssertThrowsError(try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }) { error in
            XCTAssertTrue("\(error)".contains("multiples of"), "\(error)")
        }
    }

    /// tiny-sd1 with its tokenizer folder as transformers 5 saves it (`tokenizer.json` only,
    /// `Tests/Fixtures/tokenizer/tf5/tiny-sd1`) gives diffusers' image of the classic folder;
    /// tools/fixtures/tokenizer_json_refs.py checked that diffusers gives that image from it too.
    func testFolderSavedByTransformers5GivesDiffusersImage() throws {
        let fm = FileManager.default
        let folder = fm.temporaryDirectory.appendingPathComponent("tf5-\(UUID().uuidString)")
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: folder) }
        let original = Self.fixtures.appendingPathComponent("tiny-sd1")
        for entry in try fm.contentsOfDirectory(atPath: original.path) where entry != "tokenizer" {
            try fm.createSymbolicLink(at: folder.appendingPathComponent(entry), withDestinationURL: original.appendingPathComponent(entry))
        }
        try fm.createSymbolicLink(at: folder.appendingPathComponent("tokenizer"),
                                  withDestinationURL: Self.fixtures.appendingPathComponent("tokenizer/tf5/tiny-sd1"))
        let pipeline = try TextToImagePipeline(modelDirectory: folder, threads: 2)
        let request = GenerationRequest(prompt: "a photo of a cat", width: 32, height: 32, steps: 5,
                                        sampler: .euler, guidance: 7.5, seed: 1000)
        let image = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
        let reference = try [UInt8](Data(contentsOf: Self.fixtures.appendingPathComponent("pipeline/tiny-sd1-euler-default-32x32-s1000.rgb")))
        XCTAssertEqual(image.pixels.count, reference.count)
        let worst = zip(image.pixels, reference).map { abs(Int($0) - Int($1)) }.max() ?? 255
        XCTAssertLessThanOrEqual(worst, 1)
    }

    func testMissingFolderNamesTheComponent() {
        XCTAssertThrowsError(try TextToImagePipeline(modelDirectory: URL(fileURLWithPath: "/nonexistent/model"), threads: 1)) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/model"), "\(error)")
            XCTAssertTrue("\(error)".contains("model_index.json"), "\(error)")
        }
    }
}

/// Intermediate checks against `pipeline/latents.safetensors`: the initial noise of every
/// case (the pipeline's first draw from the seeded CPU generator) bit for bit, and the final
/// latents before the VAE closely.
final class PipelineLatentTests: XCTestCase {
    func testInitialNoiseAndFinalLatents() throws {
        let fixtures = PipelineReferenceTests.fixtures
        let text = try String(contentsOf: fixtures.appendingPathComponent("pipeline/index.json"), encoding: .utf8)
        let index = try JSONDecoder().decode(PipelineReferenceTests.Index.self,
                                             from: Data(text.replacingOccurrences(of: "-Infinity", with: "null").utf8))
        let file = try SafeTensorsFile(path: fixtures.appendingPathComponent("pipeline/latents.safetensors").path)
        var pipelines: [String: TextToImagePipeline] = [:]
        var worst: Float = 0
        for item in index.cases {
            let pipeline = try pipelines[item.model] ?? TextToImagePipeline(modelDirectory: fixtures.appendingPathComponent(item.model), threads: 2)
            pipelines[item.model] = pipeline
            let factor = pipeline.downscaleFactor
            let count = 4 * (item.height / factor) * (item.width / factor)
            let noise = try file.floats("\(item.id).noise")
            XCTAssertEqual(noise.count, count, item.id)
            let mine = makeNoiseGenerator(.cpu, seed: item.seed).normal(count: count)
            XCTAssertEqual(mine.map(\.bitPattern), noise.map(\.bitPattern), "\(item.id): initial noise")

            let request = try item.request()
            let latents = try pipeline.denoisedLatents(request, snapshotEvery: 0) { _ in .proceed }.toArray()
            let reference = try file.floats("\(item.id).final")
            let scale = max(1, reference.map { abs($0) }.max() ?? 1)
            let difference = zip(latents, reference).map { abs($0 - $1) }.max() ?? .infinity
            worst = max(worst, difference / scale)
            XCTAssertLessThan(difference / scale, 1e-4, "\(item.id): final latents")
        }
        print("pipeline latents: worst relative difference \(worst)")
    }
}
