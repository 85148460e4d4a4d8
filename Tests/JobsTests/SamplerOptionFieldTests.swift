import ControlProtocol
import Foundation
import Jobs
import Sampling
import XCTest

/// `eta` and `restart` (issue 18's sampler options): parsed with their ranges and positions,
/// checked against the job's sampler at intake, carried to the request, recorded in the PNG's
/// parameters, result.json and the journal; config defaults dropped where they do not apply.
final class SamplerOptionFieldTests: XCTestCase {
    func specs(_ text: String, defaults: JobDefaults = JobDefaults(),
               lookup: SchedulerConfigLookup? = SamplerIntakeTests.fixtureConfig) throws -> [JobSpec] {
        let parser = JobFileParser(defaults: defaults, nativeSize: { _ in NativeImageSize(width: 32, height: 32, vaeFactor: 2) },
                                   schedulerConfig: lookup)
        return try parser.parse(bytes: Array(text.utf8), file: "job.yaml")
    }

    func parse(_ text: String, defaults: JobDefaults = JobDefaults()) throws -> JobSpec {
        try XCTUnwrap(try specs(text, defaults: defaults).first)
    }

    func error(_ text: String, defaults: JobDefaults = JobDefaults()) -> String {
        do {
            _ = try specs(text, defaults: defaults)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testFieldsReachRequestMetadataParametersAndJournal() throws {
        let spec = try parse("prompt: x\nsampler: euler_a\neta: 1.5\nrestart: [5, 2, 0.5, 2.0]\n")
        let restart = RestartSegment(steps: 5, times: 2, sigmaMin: 0.5, sigmaMax: 2)
        XCTAssertEqual(spec.samplerOptions, SamplerOptions(eta: 1.5, restart: restart))
        let request = spec.request(image: 0)
        XCTAssertEqual(request.samplerOptions, SamplerOptions(eta: 1.5, restart: restart))
        XCTAssertTrue(A1111Parameters.text(for: request, model: "m").hasSuffix(", RNG: CPU, Eta: 1.5, Restart: \"[5, 2, 0.5, 2]\""),
                      A1111Parameters.text(for: request, model: "m"))
        let json = String(decoding: try JSONEncoder().encode(spec.parameters(model: "m")), as: UTF8.self)
        XCTAssertTrue(json.contains("\"eta\":1.5") && json.contains("\"restart\":[5,2,0.5,2]"), json)
        XCTAssertEqual(try JSONDecoder().decode(JobSpec.self, from: JSONEncoder().encode(spec)).samplerOptions, spec.samplerOptions)
        // Block-style list; DDIM's eta under the web UI's own key.
        XCTAssertEqual(try parse("prompt: x\nsampler: euler_a\nrestart:\n  - 3\n  - 1\n  - 0.4\n  - 3\n").samplerOptions.restart,
                       RestartSegment(steps: 3, times: 1, sigmaMin: 0.4, sigmaMax: 3))
        let ddim = try parse("prompt: x\nsampler: ddim\neta: 0.3\n")
        XCTAssertTrue(A1111Parameters.text(for: ddim.request(image: 0), model: "m").hasSuffix(", Eta DDIM: 0.3"))
        // Without them nothing is written, and old journals decode as none.
        let plain = try parse("prompt: x\n")
        XCTAssertTrue(plain.samplerOptions.isEmpty)
        XCTAssertFalse(A1111Parameters.text(for: plain.request(image: 0), model: "m").contains("Eta"))
        XCTAssertFalse(String(decoding: try JSONEncoder().encode(plain), as: UTF8.self).contains("restart"))
    }

    func testSamplersWithoutTheOptionRefuseItAtItsField() {
        XCTAssertEqual(error("prompt: x\nsampler: euler\neta: 1.5\n"),
                       "job.yaml:3:6: field 'eta': sampler euler: eta: this sampler has no eta; samplers with one: euler_a, ddim")
        XCTAssertEqual(error("prompt: x\nsampler: ddim\neta: 1.5\n"),
                       "job.yaml:3:6: field 'eta': sampler ddim: eta: 1.5 is outside 0.0…1.0")
        XCTAssertEqual(error("prompt: x\nsampler: dpm++2m\nrestart: [5, 2, 0.5, 2]\n"),
                       "job.yaml:3:10: field 'restart': sampler dpm++2m: restart: only euler_a restarts")
        XCTAssertEqual(error("prompt: x\neta: 101\nsampler: euler_a\n"),
                       "job.yaml:2:6: field 'eta': 101 is out of range; expected a number from 0.0 to 100.0")
    }

    func testMalformedRestartIsRejectedWithPosition() {
        XCTAssertEqual(error("prompt: x\nsampler: euler_a\nrestart: 5\n"),
                       "job.yaml:3:10: field 'restart': expected a list [steps, times, sigma_min, sigma_max]")
        XCTAssertEqual(error("prompt: x\nsampler: euler_a\nrestart: [5, 2, 0.5]\n"),
                       "job.yaml:3:10: field 'restart': expected 4 numbers [steps, times, sigma_min, sigma_max], got 3")
        XCTAssertEqual(error("prompt: x\nsampler: euler_a\nrestart: [5, 0, 0.5, 2]\n"),
                       "job.yaml:3:14: field 'restart[1] (times)': \"0\" is out of range; expected a whole number from 1 to 100")
        XCTAssertEqual(error("prompt: x\nsampler: euler_a\nrestart: [5, 2, 2, 0.5]\n"),
                       "job.yaml:3:20: field 'restart[3] (sigma_max)': must be above sigma_min (2)")
        XCTAssertEqual(error("prompt: x\nsampler: euler_a\nrestart: [5, 2, [1], 2]\n"),
                       "job.yaml:3:17: field 'restart': expected single values")
        // sigma_max must clear the schedule's sigma nearest sigma_min (the model's scheduler config).
        XCTAssertTrue(error("prompt: x\nsampler: euler_a\nrestart: [5, 2, 3.3, 3.4]\n")
            .hasPrefix("job.yaml:3:10: field 'restart': sampler euler_a: restart: sigma_max 3.4 must be above the schedule's sigma nearest sigma_min 3.3, which is 3.438"))
        // limits.max_steps (150) bounds the job's steps and the segment's together.
        XCTAssertEqual(error("prompt: x\nsampler: euler_a\nsteps: 25\nrestart: [1000, 100, 0.5, 2]\n"),
                       "job.yaml:4:10: field 'restart': adds 100000 steps to the 25 of the job, more than limits.max_steps (150) in all")
        XCTAssertEqual(try XCTUnwrap(try? specs("prompt: x\nsampler: euler_a\nsteps: 25\nrestart: [5, 2, 0.5, 2]\n").first).stepsWithRestarts, 35)
        XCTAssertEqual(error("prompt: x\nsampler: euler_a\nrestart: [5, 2, 0.5, 2]\ninit_image: /nonexistent/a.png\n"),
                       "job.yaml:3:10: field 'restart': restart segments are for text-to-image; leave out init_image or restart")
    }

    func testConfigDefaultsApplyOnlyWhereTheSamplerTakesThem() throws {
        var defaults = JobDefaults()
        defaults.sampler = .eulerAncestral
        defaults.eta = 1.5
        defaults.restart = RestartSegment(steps: 5, times: 2, sigmaMin: 0.5, sigmaMax: 2)
        XCTAssertEqual(try parse("prompt: x\n", defaults: defaults).samplerOptions, SamplerOptions(eta: 1.5, restart: defaults.restart))
        XCTAssertTrue(try parse("prompt: x\nsampler: euler\n", defaults: defaults).samplerOptions.isEmpty)
        // ddim has an eta too (0…1), but the defaults' 1.5 goes with their euler_a.
        XCTAssertTrue(try parse("prompt: x\nsampler: ddim\n", defaults: defaults).samplerOptions.isEmpty)
        XCTAssertEqual(try parse("prompt: x\nsampler: ddim\neta: 0.5\n", defaults: defaults).samplerOptions, SamplerOptions(eta: 0.5))
        // The job's own value wins; img2img drops the default segment but keeps the eta.
        XCTAssertEqual(try parse("prompt: x\neta: 1\n", defaults: defaults).samplerOptions.eta, 1)
        XCTAssertEqual(try parse("prompt: x\ninit_image: /nonexistent/a.png\n", defaults: defaults).samplerOptions, SamplerOptions(eta: 1.5))
    }

    func testConfigReadsThemInBothDefaultSections() throws {
        let config = try ServiceConfig.parse(bytes: Array("""
        models:
          shapes:
            path: /m/shapes
            defaults: {guidance: 1.5, sampler: euler_a, eta: 1.5, restart: [5, 2, 0.5, 2.0]}
        defaults:
          eta: 0.5
          sampler: euler_a
          restart:
            - 3
            - 1
            - 0.4
            - 3
        """.utf8), file: "d.yaml", base: URL(fileURLWithPath: "/etc"))
        XCTAssertEqual(config.modelDefaults["shapes"]?.eta, 1.5)
        XCTAssertEqual(config.modelDefaults["shapes"]?.restart, RestartSegment(steps: 5, times: 2, sigmaMin: 0.5, sigmaMax: 2))
        XCTAssertEqual(config.defaults.eta, 0.5)
        XCTAssertEqual(config.defaults.restart, RestartSegment(steps: 3, times: 1, sigmaMin: 0.4, sigmaMax: 3))
        XCTAssertThrowsError(try ServiceConfig.parse(bytes: Array("defaults:\n  restart: 5\n".utf8), file: "d.yaml",
                                                     base: URL(fileURLWithPath: "/etc"))) { error in
            XCTAssertEqual("\(error)", "d.yaml:2:12: field 'defaults.restart': expected a list [steps, times, sigma_min, sigma_max]")
        }
        // A default must suit its section's sampler, so that no job is refused for it.
        XCTAssertThrowsError(try ServiceConfig.parse(bytes: Array("defaults:\n  eta: 0.5\n".utf8), file: "d.yaml",
                                                     base: URL(fileURLWithPath: "/etc"))) { error in
            XCTAssertEqual("\(error)", "d.yaml:2:8: field 'defaults.eta': sampler euler: eta: this sampler has no eta; samplers with one: euler_a, ddim")
        }
        XCTAssertThrowsError(try ServiceConfig.parse(bytes: Array("models:\n  m: {path: /m, defaults: {sampler: ddim, eta: 2}}\n".utf8),
                                                     file: "d.yaml", base: URL(fileURLWithPath: "/etc"))) { error in
            XCTAssertEqual("\(error)", "d.yaml:2:48: field 'models.m.defaults.eta': sampler ddim: eta: 2.0 is outside 0.0…1.0")
        }
        // A model entry naming its own sampler does not inherit the section's eta and restart.
        let inherited = try ServiceConfig.parse(bytes: Array("""
        models:
          plain: {path: /m/plain, defaults: {sampler: euler}}
          same: {path: /m/same, defaults: {steps: 30}}
        defaults: {sampler: euler_a, eta: 1.5, restart: [5, 2, 0.5, 2]}
        """.utf8), file: "d.yaml", base: URL(fileURLWithPath: "/etc"))
        XCTAssertNil(inherited.modelDefaults["plain"]?.eta)
        XCTAssertNil(inherited.modelDefaults["plain"]?.restart)
        XCTAssertEqual(inherited.modelDefaults["same"]?.eta, 1.5)
        XCTAssertEqual(inherited.modelDefaults["same"]?.restart?.steps, 5)
        XCTAssertThrowsError(try ServiceConfig.parse(bytes: Array("defaults:\n  steps: [5]\n".utf8), file: "d.yaml",
                                                     base: URL(fileURLWithPath: "/etc"))) { error in
            XCTAssertEqual("\(error)", "d.yaml:2:10: field 'defaults.steps': expected a single value")
        }
    }
}
