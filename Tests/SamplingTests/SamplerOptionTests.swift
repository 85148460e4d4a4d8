import Foundation
import XCTest
@testable import Sampling

/// `eta` and `restart` (`SamplerOptions`) in the engine's samplers: the restart schedule
/// against tools/fixtures/ancestral_restart.py's (recorded from its set_timesteps on the
/// built-in model's scheduler config, 25 steps, restart [5, 2, 0.5, 2.0]), eta 1 as diffusers'
/// class bit for bit, and the checks of which sampler takes what.
final class SamplerOptionTests: XCTestCase {
    static let shapesScheduler = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/shapes/scheduler/scheduler_config.json")

    func settings(_ sampler: SamplerKind, _ options: SamplerOptions) throws -> SamplerSettings {
        var settings = try SamplerSettings(sampler: sampler, config: try SchedulerConfig(contentsOf: Self.shapesScheduler))
        settings.options = options
        return settings
    }

    func testRestartSplicesTheReferenceSchedule() throws {
        let restart = RestartSegment(steps: 5, times: 2, sigmaMin: 0.5, sigmaMax: 2)
        let sampler = try makeSampler(try settings(.eulerAncestral, SamplerOptions(eta: 1.5, restart: restart)), steps: 25, elementCount: 4)
        // ancestral_restart.py: 35 evaluations; main sigmas up to 0.595 (step 20 lands on 0.497,
        // the one nearest 0.5), then twice 2.0 → 0.671 on the Karras ramp, then 0.497 … 0.203.
        XCTAssertEqual(sampler.timesteps.count, 35)
        let expectedSigmas: [Float] = [0.595, 2.0, 1.546, 1.184, 0.897, 0.671, 2.0, 1.546, 1.184, 0.897, 0.671, 0.497, 0.402]
        for (i, expected) in expectedSigmas.enumerated() {
            XCTAssertEqual(sampler.sigmas[20 + i], expected, accuracy: 0.0006, "sigma of evaluation \(20 + i)")
        }
        XCTAssertEqual(sampler.sigmas.last, 0)
        let expectedTimesteps: [Float] = [199, 532.17, 461.75, 385.26, 305.88, 228.55, 532.17, 461.75, 385.26, 305.88, 228.55, 159]
        for (i, expected) in expectedTimesteps.enumerated() {
            XCTAssertEqual(sampler.timesteps[20 + i], expected, accuracy: 0.006, "timestep of evaluation \(20 + i)")
        }
    }

    /// Runs `sampler` on a fixed latent with a fixed "model" (output = 0.1 × input) and seed.
    func run(_ sampler: DiffusionSampler) throws -> [Float] {
        var latents = (0..<sampler.elementCount).map { Float($0 % 7) * 0.3 - 0.9 }
        let noise = TorchCPUGenerator(seed: 7)
        try latents.withUnsafeMutableBufferPointer { buffer in
            try sample(sampler, latents: buffer, noise: noise) { input, _, output in
                for i in 0..<input.count { output[i] = 0.1 * input[i] }
            }
        }
        return latents
    }

    func testEtaOneIsDiffusersClassAndOtherEtasDiffer() throws {
        let plain = try run(try makeSampler(try settings(.eulerAncestral, SamplerOptions()), steps: 10, elementCount: 64))
        let one = try run(try makeSampler(try settings(.eulerAncestral, SamplerOptions(eta: 1)), steps: 10, elementCount: 64))
        XCTAssertEqual(plain, one)
        let more = try run(try makeSampler(try settings(.eulerAncestral, SamplerOptions(eta: 1.5)), steps: 10, elementCount: 64))
        XCTAssertNotEqual(plain, more)
        XCTAssertTrue(more.allSatisfy(\.isFinite))
    }

    func testWhichSamplerTakesWhat() throws {
        XCTAssertThrowsError(try makeSampler(try settings(.euler, SamplerOptions(eta: 1)), steps: 10, elementCount: 4)) { error in
            XCTAssertEqual("\(error)", "sampler euler: eta: this sampler has no eta; samplers with one: euler_a, ddim")
        }
        XCTAssertThrowsError(try makeSampler(try settings(.ddim, SamplerOptions(eta: 2)), steps: 10, elementCount: 4))
        XCTAssertNoThrow(try makeSampler(try settings(.ddim, SamplerOptions(eta: 0.5)), steps: 10, elementCount: 4))
        let restart = RestartSegment(steps: 2, times: 1, sigmaMin: 1, sigmaMax: 3)
        XCTAssertThrowsError(try makeSampler(try settings(.heun, SamplerOptions(restart: restart)), steps: 10, elementCount: 4))
        XCTAssertThrowsError(try makeSampler(try settings(.eulerAncestral, SamplerOptions(restart: restart)), steps: 1, elementCount: 4)) { error in
            XCTAssertEqual("\(error)", "sampler euler_a: restart: needs at least 2 steps (a sigma between the first and the last)")
        }
        let empty = RestartSegment(steps: 0, times: 1, sigmaMin: 1, sigmaMax: 3)
        XCTAssertThrowsError(try makeSampler(try settings(.eulerAncestral, SamplerOptions(restart: empty)), steps: 10, elementCount: 4))
    }
}
