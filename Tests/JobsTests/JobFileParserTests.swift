import Foundation
import Jobs
import Sampling
import XCTest

final class JobFileParserTests: XCTestCase {
    func parse(_ text: String, parser: JobFileParser = JobFileParser(knownModels: ["tiny", "shapes"])) throws -> [JobSpec] {
        try parser.parse(bytes: Array(text.utf8), file: "job.yaml")
    }

    func testEveryFieldIsRead() throws {
        let text = """
        # a comment
        prompt: a red circle, at the top left
        negative_prompt: "blurry"
        model: tiny
        width: 64
        height: 96
        steps: 12
        sampler: dpm++2m
        schedule: karras
        guidance: 6.5
        seed: 18446744073709551614
        count: 2
        priority: high
        snapshots: 3
        rng: philox
        name: My_job-1.v2

        """
        let jobs = try parse(text)
        XCTAssertEqual(jobs.count, 1)
        let job = try XCTUnwrap(jobs.first)
        XCTAssertEqual(job.prompt, "a red circle, at the top left")
        XCTAssertEqual(job.negativePrompt, "blurry")
        XCTAssertEqual(job.model, "tiny")
        XCTAssertEqual([job.width, job.height, job.steps, job.count, job.priority, job.snapshots], [64, 96, 12, 2, 75, 3])
        XCTAssertEqual(job.sampler, .dpmpp2m)
        XCTAssertEqual(job.schedule, .karras)
        XCTAssertEqual(job.guidance, 6.5)
        XCTAssertEqual(job.seed, 18446744073709551614)
        XCTAssertEqual(job.rng, .philox)
        XCTAssertEqual(job.name, "My_job-1.v2")
        XCTAssertEqual(job.sourceText, text)
        XCTAssertEqual(job.request(image: 1).seed, 18446744073709551615)
    }

    func testDefaultsFillMissingFields() throws {
        var defaults = JobDefaults()
        defaults.width = 128
        defaults.steps = 7
        defaults.sampler = .ddim
        let job = try XCTUnwrap(try parse("prompt: x\n", parser: JobFileParser(defaults: defaults)).first)
        XCTAssertEqual(job.width, 128)
        XCTAssertEqual(job.height, 512)
        XCTAssertEqual(job.steps, 7)
        XCTAssertEqual(job.sampler, .ddim)
        XCTAssertNil(job.seed, "absent seed stays nil until the intake draws one")
        XCTAssertNil(job.model)
        XCTAssertEqual(job.count, 1)
        XCTAssertEqual(job.priority, 50)
    }

    func testPriorityNamesAndNumbers() throws {
        for (value, expected) in [("low", 25), ("normal", 50), ("high", 75), ("urgent", 100), ("0", 0), ("99", 99)] {
            XCTAssertEqual(try parse("prompt: x\npriority: \(value)\n").first?.priority, expected, value)
        }
    }

    func testSeveralDocumentsGiveSeveralJobsWithTheirOwnText() throws {
        let text = "prompt: one\nseed: 1\n---\nprompt: two\n---\n# third\nprompt: three\n"
        let jobs = try parse(text)
        XCTAssertEqual(jobs.map(\.prompt), ["one", "two", "three"])
        XCTAssertEqual(jobs.map(\.documentIndex), [1, 2, 3])
        XCTAssertEqual(jobs.map(\.sourceText), ["prompt: one\nseed: 1\n", "---\nprompt: two\n", "---\n# third\nprompt: three\n"])
    }

    func testUnicodeAndBlockScalarPrompts() throws {
        let jobs = try parse("prompt: |\n  un cercle rouge — 赤い円\n  second line\nnegative_prompt: ''\n")
        XCTAssertEqual(jobs.first?.prompt, "un cercle rouge — 赤い円\nsecond line\n")
        XCTAssertEqual(jobs.first?.negativePrompt, "")
    }

    func testUnknownModelListsConfiguredOnes() {
        XCTAssertThrowsError(try parse("prompt: x\nmodel: sdxl\n")) { error in
            XCTAssertEqual("\(error)", "job.yaml:2:8: field 'model': unknown model \"sdxl\"; configured: shapes, tiny")
        }
    }

    func testSeedPlusCountMustNotOverflow() {
        XCTAssertThrowsError(try parse("prompt: x\nseed: 18446744073709551615\ncount: 2\n")) { error in
            XCTAssertEqual("\(error)", "job.yaml:2:7: field 'seed': seed + count - 1 exceeds 18446744073709551615")
        }
    }

    func testNameRule() {
        XCTAssertTrue(JobFileParser.isValidName("a.b_c-D9"))
        XCTAssertTrue(JobFileParser.isValidName(String(repeating: "x", count: 64)))
        for bad in ["", ".", "..", "a/b", "a\\b", "a b", String(repeating: "x", count: 65), "é"] {
            XCTAssertFalse(JobFileParser.isValidName(bad), bad)
        }
    }
}
