import XCTest
@testable import Sampling

/// TCD beyond the generic schedule and loop tables (which run it at diffusiond's gamma 0.3):
/// the smaller timestep s, whole loops at other gammas and diffusers' own TCD test recipes,
/// all recorded in tcd.json by tools/fixtures/sampling_refs.py.
final class TCDSamplerTests: XCTestCase {
    struct Loop: Decodable {
        var config: String
        var gamma: Double
        var steps: Int
        var seed: UInt64
        var shape: [Int]
        var result: [Float]
    }
    struct Recipe: Decodable {
        var sum: Double
        var mean: Double
        var steps: Int
        var gamma: Double
        var config: SchedulerConfig
    }
    struct File: Decodable {
        var gammas: [Double]
        var smaller_timesteps: [String: [Int]]
        var loops: [Loop]
        var recipes: [String: Recipe]
    }
    struct Configs: Decodable { var configs: [String: SchedulerConfig] }

    private func makeTCD(_ config: SchedulerConfig, steps: Int, count: Int, gamma: Double) throws -> TCDSampler {
        let settings = try SamplerSettings(sampler: .tcd, config: config)
        let sampler = try XCTUnwrap(try makeSampler(settings, steps: steps, elementCount: count) as? TCDSampler)
        sampler.gamma = gamma
        return sampler
    }

    /// floor((1 - gamma) * t_prev) in float32, for every previous timestep and several gammas.
    func testSmallerTimestepMatchesTorch() throws {
        let file = try SamplingFixtures.load("tcd.json", as: File.self)
        XCTAssertEqual(file.smaller_timesteps.count, file.gammas.count)
        for gamma in file.gammas {
            let reference = try XCTUnwrap(file.smaller_timesteps["\(gamma)"], "gamma \(gamma)")
            XCTAssertEqual(reference.count, 1000)
            let mine = (0..<1000).map { TCDSampler.smallerTimestep(previous: $0, gamma: gamma) }
            XCTAssertEqual(mine, reference, "gamma \(gamma)")
        }
    }

    /// The loops of SamplerLoopTests at gammas 0 (deterministic), 0.1, 0.5 and 1, with the
    /// same tolerance.
    func testLoopsAtOtherGammasMatchDiffusers() throws {
        let file = try SamplingFixtures.load("tcd.json", as: File.self)
        let configs = try SamplingFixtures.load("schedules.json", as: Configs.self).configs
        XCTAssertGreaterThanOrEqual(file.loops.count, 40)
        var failures = 0
        for item in file.loops {
            let label = "\(item.config)/gamma \(item.gamma)/\(item.steps) steps/seed \(item.seed)"
            let count = item.shape.reduce(1, *)
            let sampler = try makeTCD(try XCTUnwrap(configs[item.config]), steps: item.steps, count: count, gamma: item.gamma)
            if !SamplerLoopTests.check(sampler, seed: item.seed, against: item.result, label) { failures += 1 }
        }
        XCTAssertEqual(failures, 0)
    }

    /// tests/schedulers/test_scheduler_tcd.py `test_full_loop_onestep_deter` /
    /// `test_full_loop_multistep_deter` (eta = 0; the model is sample * t / (t + 1) on
    /// `dummy_sample_deter`): the numbers the diffusers test asserts (± 1e-3, as there) and
    /// those diffusers 0.42 computes (tightly, as DiffusersRecipeTests).
    func testDiffusersTCDRecipes() throws {
        let recipes = try SamplingFixtures.load("tcd.json", as: File.self).recipes
        let asserted: [String: (sum: Double, mean: Double)] = [
            "onestep_deter": (29.8715, 0.0389),
            "multistep_deter": (181.2040, 0.2359),
        ]
        XCTAssertEqual(Set(recipes.keys), Set(asserted.keys))
        for (name, reference) in recipes {
            let count = DiffusersRecipeTests.dummySampleDeterministic.count
            let sampler = try makeTCD(reference.config, steps: reference.steps, count: count, gamma: reference.gamma)
            let generator = TorchCPUGenerator(seed: 0)
            var sample = DiffusersRecipeTests.dummySampleDeterministic
            for t in sampler.timesteps {
                let output = DiffusersRecipeTests.dummyModel(sample, t)
                try output.withUnsafeBufferPointer { out in
                    try sample.withUnsafeMutableBufferPointer { x in
                        try sampler.step(modelOutput: out, sample: x, noise: generator)
                    }
                }
            }
            let sum = sample.reduce(0.0) { $0 + Double(abs($1)) }
            let mean = sum / Double(sample.count)
            let test = try XCTUnwrap(asserted[name])
            XCTAssertEqual(sum, test.sum, accuracy: 1e-3, "\(name): result_sum")
            XCTAssertEqual(mean, test.mean, accuracy: 1e-3, "\(name): result_mean")
            XCTAssertEqual(sum, reference.sum, accuracy: 1e-4 * max(1, reference.sum), "\(name): result_sum")
            XCTAssertEqual(mean, reference.mean, accuracy: 1e-4 * max(1e-3, reference.mean), "\(name): result_mean")
        }
    }

    /// Defaults: gamma 0.3; noise is drawn on every step but the last, and never at gamma 0.
    func testGammaDefaultAndNoiseDraws() throws {
        final class CountingGenerator: NoiseGenerator {
            let seed: UInt64 = 0
            var calls = 0
            func fillNormal(_ out: UnsafeMutableBufferPointer<Float>) {
                calls += 1
                for i in out.indices { out[i] = 0.5 }
            }
        }
        let settings = try SamplerSettings(sampler: .tcd, config: SchedulerConfig())
        XCTAssertEqual(try XCTUnwrap(try makeSampler(settings, steps: 4, elementCount: 8) as? TCDSampler).gamma, 0.3)
        for (gamma, draws) in [(0.3, 3), (0.0, 0), (1.0, 3)] {
            let sampler = try makeTCD(SchedulerConfig(), steps: 4, count: 8, gamma: gamma)
            let generator = CountingGenerator()
            var latents = [Float](repeating: 1, count: 8)
            try latents.withUnsafeMutableBufferPointer { buffer in
                try sample(sampler, latents: buffer, noise: generator) { _, _, output in
                    for i in output.indices { output[i] = 0.25 }
                }
            }
            XCTAssertEqual(generator.calls, draws, "gamma \(gamma)")
        }
    }

    /// set_timesteps: the LCM schedule, refusing more steps than original_inference_steps
    /// and an original_inference_steps outside 1…num_train_timesteps, as diffusers does.
    func testScheduleLimits() throws {
        let settings = try SamplerSettings(sampler: .tcd, config: SchedulerConfig())
        XCTAssertEqual(try makeSampler(settings, steps: 4, elementCount: 1).timesteps, [999, 759, 499, 259])
        XCTAssertNoThrow(try makeSampler(settings, steps: 50, elementCount: 1))
        XCTAssertThrowsError(try makeSampler(settings, steps: 51, elementCount: 1)) { error in
            XCTAssertTrue("\(error)".contains("original_inference_steps"), "\(error)")
        }
        let wide = try SamplerSettings(sampler: .tcd, config: try SchedulerConfig(json: Data(#"{"original_inference_steps": 1001}"#.utf8)))
        XCTAssertThrowsError(try makeSampler(wide, steps: 4, elementCount: 1)) { error in
            XCTAssertTrue("\(error)".contains("original_inference_steps"), "\(error)")
        }
        // TCDScheduler's step never thresholds or clips: both keys are accepted and change nothing.
        let ignored = try SamplerSettings(sampler: .tcd, config: try SchedulerConfig(json: Data(#"{"thresholding": true, "clip_sample": true}"#.utf8)))
        XCTAssertFalse(ignored.clipSample)
    }
}
