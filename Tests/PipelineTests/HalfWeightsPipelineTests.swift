import Foundation
import XCTest
@testable import Pipeline
import Kernels
@testable import Models
import Sampling

/// Whole images with 16-bit weights (issue 15): diffusers' StableDiffusionPipeline on the
/// fp16 / bf16 copies of tiny-sd1 loaded with torch_dtype=float32 (tools/fixtures/half_refs.py)
/// against diffusiond keeping those weights in 16 bits, within 1/255; and the 16-bit image
/// against the same model widened to fp32 at load.
final class HalfWeightsPipelineTests: XCTestCase {
    struct Index: Decodable { var cases: [PipelineReferenceTests.Case] }

    static func cases() throws -> [PipelineReferenceTests.Case] {
        // Written by Python's json module, which spells -inf as -Infinity.
        let text = try String(contentsOf: PipelineReferenceTests.fixtures.appendingPathComponent("half/index.json"), encoding: .utf8)
        let data = Data(text.replacingOccurrences(of: "-Infinity", with: "null").utf8)
        return try JSONDecoder().decode(Index.self, from: data).cases
    }

    private func worstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
        guard a.count == b.count else { return Int.max }
        return zip(a, b).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    private func image(_ pipeline: TextToImagePipeline, _ item: PipelineReferenceTests.Case) throws -> [UInt8] {
        try pipeline.generate(try item.request(), snapshotEvery: 0) { _ in .proceed }.pixels
    }

    func testHalfModelsGiveDiffusersImagesWithinOneLevel() throws {
        let cases = try Self.cases()
        XCTAssertEqual(cases.count, 4)
        let fixtures = PipelineReferenceTests.fixtures
        // (model folder to load, weights setting) for each case's model: the stored 16-bit
        // folder, and for the fp16 cases also tiny-sd1 (fp32) narrowed at load.
        var loads: [String: [(String, WeightPrecision)]] = [:]
        loads["tiny-sd1-f16"] = [("tiny-sd1-f16", .stored), ("tiny-sd1", .f16)]
        loads["tiny-sd1-bf16"] = [("tiny-sd1-bf16", .stored)]
        var pipelines: [String: TextToImagePipeline] = [:]
        for item in cases {
            let reference = try [UInt8](Data(contentsOf: fixtures.appendingPathComponent(item.image)))
            for (folder, weights) in try XCTUnwrap(loads[item.model], item.model) {
                let key = "\(folder)/\(weights)"
                let pipeline = try pipelines[key] ?? TextToImagePipeline(
                    modelDirectory: fixtures.appendingPathComponent(folder), weights: weights, threads: 2)
                pipelines[key] = pipeline
                XCTAssertNotNil(pipeline.unet.weights.convIn.weight.halfFormat, "\(key) keeps 16-bit weights")
                let pixels = try image(pipeline, item)
                XCTAssertLessThanOrEqual(worstDifference(pixels, reference), 1, "\(item.id) from \(key)")
            }
        }
    }

    func testModelReferenceCarriesTheWeightsSettingToEveryComponent() throws {
        let fixtures = PipelineReferenceTests.fixtures
        let half = try ModelReference(path: fixtures.appendingPathComponent("tiny-sd1"), weights: .f16).makePipeline(threads: 1)
        XCTAssertEqual(half.unet.weights.convIn.weight.halfFormat, .f16)
        XCTAssertEqual(half.textEncoder.layers[0].fc1.weight.halfFormat, .f16)
        XCTAssertEqual(half.textEncoder.tokenEmbedding.halfFormat, .f16)
        XCTAssertEqual(half.vae.decoder.convIn.weight.halfFormat, .f16)
        let full = try ModelReference(path: fixtures.appendingPathComponent("tiny-sd1-f16"), weights: .f32).makePipeline(threads: 1)
        XCTAssertNil(full.unet.weights.convIn.weight.halfFormat)
        XCTAssertNil(full.vae.decoder.convIn.weight.halfFormat)
        // A single file's F16 tensors are kept as stored too.
        let single = try ModelReference(path: fixtures.appendingPathComponent("single-file/tiny-sd1.safetensors"),
                                        tokenizer: fixtures.appendingPathComponent("tiny-sd1/tokenizer")).makePipeline(threads: 1)
        let formats = Set(single.unet.parameters.names.compactMap { single.unet.parameters[$0]?.halfFormat })
        XCTAssertEqual(formats, [.f16], "the fixture's F16 UNet tensors stay 16-bit")
    }

    func testHalfImageMatchesTheFP32PathOnTheSameWeights() throws {
        let item = try XCTUnwrap(try Self.cases().first { $0.model == "tiny-sd1-f16" })
        let folder = PipelineReferenceTests.fixtures.appendingPathComponent("tiny-sd1-f16")
        let half = try TextToImagePipeline(modelDirectory: folder, weights: .stored, threads: 2)
        let full = try TextToImagePipeline(modelDirectory: folder, weights: .f32, threads: 2)
        XCTAssertNil(full.unet.weights.convIn.weight.halfFormat)
        let a = try image(half, item), b = try image(full, item)
        XCTAssertLessThanOrEqual(worstDifference(a, b), 1)
    }

    /// Every parameter of the UNet and text encoder, bit patterns of the widened values.
    private func parameterBits(_ pipeline: TextToImagePipeline) -> [String: [UInt32]] {
        var out: [String: [UInt32]] = [:]
        for (prefix, registry) in [("unet.", pipeline.unet.parameters), ("text.", pipeline.textEncoder.parameters)] {
            for name in registry.names {
                if let t = registry[name] { out[prefix + name] = t.toArray().map(\.bitPattern) }
            }
        }
        return out
    }

    func testLoRAOnHalfWeightsMergesRoundedAndRevertsExactly() throws {
        let fixtures = PipelineReferenceTests.fixtures
        let pipeline = try TextToImagePipeline(modelDirectory: fixtures.appendingPathComponent("tiny-sd1-f16"), weights: .stored, threads: 1)
        let fp32 = try TextToImagePipeline(modelDirectory: fixtures.appendingPathComponent("tiny-sd1-f16"), weights: .f32, threads: 1)
        let before = parameterBits(pipeline)
        let lora = [LoRAApplication(file: fixtures.appendingPathComponent("lora/kohya.safetensors"), weight: 0.8)]
        let merger = LoRAMerger(unet: pipeline.unet, textEncoder: pipeline.textEncoder, pool: pipeline.pool)
        let reference = LoRAMerger(unet: fp32.unet, textEncoder: fp32.textEncoder, pool: fp32.pool)
        try merger.apply(lora)
        try reference.apply(lora)
        // Every merged 16-bit weight is the fp32 merge rounded to half.
        var changed = 0
        for (registry, full) in [(pipeline.unet.parameters, fp32.unet.parameters),
                                 (pipeline.textEncoder.parameters, fp32.textEncoder.parameters)] {
            for name in registry.names {
                guard let w = registry[name], w.halfFormat == .f16, let f = full[name] else { continue }
                let got = w.toArray(), want = f.toArray().map { Float(Float16($0)) }
                XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), name)
            }
        }
        let merged = parameterBits(pipeline)
        for (name, bits) in merged where before[name] != bits { changed += 1 }
        XCTAssertGreaterThan(changed, 0, "the LoRA changed weights")
        try merger.apply([])
        XCTAssertEqual(parameterBits(pipeline), before, "the revert restores every bit")
    }
}
