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
            let generator = TorchCPUGenerator(seed: item.seed)
            var latents = generator.normal(count: count).map { $0 * sampler.initNoiseSigma }
            try latents.withUnsafeMutableBufferPointer { buffer in
                try sample(sampler, latents: buffer, noise: generator) { input, t, output in
                    Self.dummyModel(input, t, output)
                }
            }
            let scale = max(1, item.result.map { abs($0) }.max() ?? 1)
            let worst = zip(latents, item.result).map { abs($0 - $1) }.max() ?? .infinity
            if !(worst <= 2e-4 * scale) {
                failures += 1
                XCTFail("\(label): max |diff| \(worst) (scale \(scale))")
            }
        }
        XCTAssertEqual(failures, 0)
    }
}

#if canImport(Glibc)
import Glibc
#endif
