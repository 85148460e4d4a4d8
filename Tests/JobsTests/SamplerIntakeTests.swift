import Foundation
import Jobs
import Sampling
import XCTest

/// Issue 21: sampler, schedule and steps are checked at intake against the job's model's
/// scheduler config, exactly as the engine builds the sampler, so such jobs are rejected with
/// their line and column instead of failing when their turn comes.
final class SamplerIntakeTests: XCTestCase {
    /// The tiny SD1 fixture's scheduler config (PNDM-style SD 1.5 config, epsilon).
    static let fixtureConfig: SchedulerConfigLookup = { _ in
        try SchedulerConfig(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tiny-sd1/scheduler/scheduler_config.json"))
    }

    func parse(_ text: String, defaults: JobDefaults = JobDefaults(),
               lookup: SchedulerConfigLookup? = SamplerIntakeTests.fixtureConfig) throws -> [JobSpec] {
        let parser = JobFileParser(defaults: defaults, nativeSize: { _ in NativeImageSize(width: 32, height: 32, vaeFactor: 2) },
                                   schedulerConfig: lookup)
        return try parser.parse(bytes: Array(text.utf8), file: "job.yaml")
    }

    func testScheduleTheSamplerLacksIsRejectedAtItsField() {
        XCTAssertThrowsError(try parse("prompt: x\nsampler: ddim\nschedule: karras\n")) { error in
            XCTAssertEqual("\(error)", "job.yaml:3:11: field 'schedule': sampler ddim has no karras schedule (its diffusers class reads no "
                + "use_karras_sigmas); use schedule: default, or one of the samplers that have it: euler, heun, dpm++2m, dpm++2m_sde, lms")
        }
    }

    func testTooManyStepsForTheSamplerAreRejectedAtSteps() {
        XCTAssertThrowsError(try parse("prompt: x\nsampler: lcm\nsteps: 150\n")) { error in
            XCTAssertEqual("\(error)", "job.yaml:3:8: field 'steps': sampler lcm: 150 steps: at most original_inference_steps (50) steps")
        }
    }

    func testValueFromTheConfigDefaultsSaysSo() {
        var defaults = JobDefaults()
        defaults.schedule = .exponential
        XCTAssertThrowsError(try parse("prompt: x\nsampler: euler_a\n", defaults: defaults)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("job.yaml:1:1: field 'schedule': sampler euler_a has no exponential schedule"), text)
            XCTAssertTrue(text.hasSuffix(" (from the config's defaults.schedule)"), text)
        }
    }

    func testGoodJobsPassAndAnUnreadableModelIsLeftToRunTime() throws {
        XCTAssertEqual(try parse("prompt: x\nsampler: dpm++2m\nschedule: karras\nsteps: 30\n").first?.steps, 30)
        XCTAssertEqual(try parse("prompt: x\nsampler: lcm\nsteps: 4\n").first?.sampler, .lcm)
        let unreadable: SchedulerConfigLookup = { _ in throw SamplingError.unreadableConfig(path: "/m", reason: "not mounted") }
        XCTAssertEqual(try parse("prompt: x\nsampler: ddim\nschedule: karras\n", lookup: unreadable).count, 1)
    }
}

/// `guidance_cutoff` (issue 16): parsed with its range, carried to the request, recorded in the
/// PNG's parameters and in result.json's parameters.
final class GuidanceCutoffFieldTests: XCTestCase {
    func specs(_ text: String) throws -> [JobSpec] {
        let parser = JobFileParser(nativeSize: { _ in NativeImageSize(width: 32, height: 32, vaeFactor: 2) })
        return try parser.parse(bytes: Array(text.utf8), file: "job.yaml")
    }

    func parse(_ text: String) throws -> JobSpec { try XCTUnwrap(try specs(text).first) }

    func testFieldReachesRequestMetadataAndParameters() throws {
        let spec = try parse("prompt: x\nguidance_cutoff: 0.4\n")
        XCTAssertEqual(spec.guidanceCutoff, 0.4)
        let request = spec.request(image: 0)
        XCTAssertEqual(request.guidanceCutoff, 0.4)
        XCTAssertTrue(A1111Parameters.text(for: request, model: "m").hasSuffix(", Guidance cutoff: 0.4"))
        XCTAssertEqual(spec.parameters(model: "m").guidanceCutoff, 0.4)
        XCTAssertNil(try parse("prompt: x\n").guidanceCutoff)
        XCTAssertFalse(A1111Parameters.text(for: try parse("prompt: x\n").request(image: 0), model: "m").contains("Guidance cutoff"))
        // The journal keeps it.
        let decoded = try JSONDecoder().decode(JobSpec.self, from: JSONEncoder().encode(spec))
        XCTAssertEqual(decoded.guidanceCutoff, 0.4)
    }

    func testOutOfRangeIsRejectedWithPosition() {
        XCTAssertThrowsError(try specs("prompt: x\nguidance_cutoff: 0\n")) { error in
            XCTAssertEqual("\(error)", "job.yaml:2:18: field 'guidance_cutoff': must be above 0 (for no guidance at all, set guidance: 1)")
        }
        XCTAssertThrowsError(try specs("prompt: x\nguidance_cutoff: 1.5\n")) { error in
            XCTAssertEqual("\(error)", "job.yaml:2:18: field 'guidance_cutoff': 1.5 is out of range; expected a number from 0.0 to 1.0")
        }
    }
}

/// `cache` (DeepCache interval, issue 16): parsed with its range, carried to the request,
/// recorded in the PNG's parameters, result.json's parameters and the journal.
final class StepCacheFieldTests: XCTestCase {
    func specs(_ text: String) throws -> [JobSpec] {
        let parser = JobFileParser(nativeSize: { _ in NativeImageSize(width: 32, height: 32, vaeFactor: 2) })
        return try parser.parse(bytes: Array(text.utf8), file: "job.yaml")
    }

    func parse(_ text: String) throws -> JobSpec { try XCTUnwrap(try specs(text).first) }

    func testFieldReachesRequestMetadataAndParameters() throws {
        let spec = try parse("prompt: x\ncache: 3\n")
        XCTAssertEqual(spec.cache, 3)
        let request = spec.request(image: 0)
        XCTAssertEqual(request.cache, 3)
        XCTAssertTrue(A1111Parameters.text(for: request, model: "m").hasSuffix(", DeepCache interval: 3"))
        XCTAssertEqual(spec.parameters(model: "m").cache, 3)
        let json = String(decoding: try JSONEncoder().encode(spec.parameters(model: "m")), as: UTF8.self)
        XCTAssertTrue(json.contains("\"cache\":3"), json)
        let off = try parse("prompt: x\n")
        XCTAssertNil(off.cache)
        XCTAssertNil(off.request(image: 0).cache)
        XCTAssertFalse(A1111Parameters.text(for: off.request(image: 0), model: "m").contains("DeepCache"))
        XCTAssertEqual(try JSONDecoder().decode(JobSpec.self, from: JSONEncoder().encode(spec)).cache, 3)
    }

    func testBadValuesAreRejectedWithPosition() {
        XCTAssertThrowsError(try specs("prompt: x\ncache: 0\n")) { error in
            XCTAssertEqual("\(error)", "job.yaml:2:8: field 'cache': \"0\" is out of range; expected a whole number from 1 to 150")
        }
        XCTAssertThrowsError(try specs("prompt: x\ncache: 2.5\n")) { error in
            XCTAssertTrue("\(error)".hasPrefix("job.yaml:2:8: field 'cache': "), "\(error)")
        }
    }
}
