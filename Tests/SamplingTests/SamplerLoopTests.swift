import XCTest
@testable import Sampling

/// Whole StableDiffusionPipeline-style loops (init noise from the seeded CPU generator,
/// scale_model_input, a deterministic dummy model, step with the same generator) against
/// the latents diffusers ends with, for every sampler, two configs and both schedules.
final class SamplerLoopTests: XCTestCase {
    struct Case: Decodable {
        var config: String
        var sampler: String
        var schedule: String
        var steps: Int
        var seed: UInt64
        var shape: [Int]
        var result: [Float]
    }
    struct File: Decodable { var cases: [Case] }
    struct Configs: Decodable { var configs: [String: SchedulerConfig] }

    /// x * t/(t+1000) + 0.1 tanh(x) + 0.01 t/1000, as in tools/fixtures/scheduler_refs.py.
    static func dummyModel(_ input: UnsafeBufferPointer<Float>, _ t: Float, _ output: UnsafeMutableBufferPointer<Float>) {
        let scale = Float(Double(t) / (Double(t) + 1000))
        let offset = Float(0.01 * (Double(t) / 1000))
        for i in 0..<input.count { output[i] = input[i] * scale + 0.1 * tanh(input[i]) + offset }
    }

    func testLoopsMatchDiffusers() throws {
        let file = try SamplingFixtures.load("loops.json", as: File.self)
        let configs = try SamplingFixtures.load("schedules.json", as: Configs.self).configs
        XCTAssertGreaterThan(file.cases.count, 40)
        var failures = 0
        for item in file.cases {
            let label = "\(item.config)/\(item.sampler)/\(item.schedule)/\(item.steps) steps/seed \(item.seed)"
            let kind = try XCTUnwrap(SamplerKind(rawValue: item.sampler))
            let settings = try SamplerSettings(sampler: kind, config: try XCTUnwrap(configs[item.config]),
                                               schedule: try XCTUnwrap(ScheduleKind(rawValue: item.schedule)))
            let count = item.shape.reduce(1, *)
            let sampler = try makeSampler(settings, steps: item.steps, elementCount: count)
            if !Self.check(sampler, seed: item.seed, against: item.result, label) { failures += 1 }
        }
        XCTAssertEqual(failures, 0)
    }

    /// Runs `sampler` from `torch.randn` latents of `seed` on the dummy model and compares
    /// the final latents with `reference` (max |diff| <= 2e-4 of the largest value, at least
    /// 2e-4); reports and returns false when they differ.
    static func check(_ sampler: DiffusionSampler, seed: UInt64, against reference: [Float], _ label: String,
                      file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let generator = TorchCPUGenerator(seed: seed)
        var latents = generator.normal(count: sampler.elementCount).map { $0 * sampler.initNoiseSigma }
        do {
            try latents.withUnsafeMutableBufferPointer { buffer in
                try sample(sampler, latents: buffer, noise: generator) { input, t, output in
                    dummyModel(input, t, output)
                }
            }
        } catch {
            XCTFail("\(label): \(error)", file: file, line: line)
            return false
        }
        let scale = max(1, reference.map { abs($0) }.max() ?? 1)
        let worst = zip(latents, reference).map { abs($0 - $1) }.max() ?? .infinity
        guard latents.count == reference.count, worst <= 2e-4 * scale else {
            XCTFail("\(label): max |diff| \(worst) (scale \(scale))", file: file, line: line)
            return false
        }
        return true
    }
}

#if canImport(Glibc)
import Glibc
#endif
