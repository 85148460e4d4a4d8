import Foundation
import Jobs
import Sampling
import XCTest

final class JobFileParserTests: XCTestCase {
    /// Native sizes as a config's lookup would read them from model folders: `shapes` (the
    /// default) 64×64 with VAE factor 4, `tiny` 16×24 with factor 2.
    static let nativeSizes: NativeSizeLookup = { name in
        switch name ?? "shapes" {
        case "tiny": return NativeImageSize(width: 16, height: 24, vaeFactor: 2)
        case "shapes": return NativeImageSize(width: 64, height: 64, vaeFactor: 4)
        default: throw NativeSizeError(reason: "model \(name ?? "") is not configured")
        }
    }

    func parse(_ text: String, parser: JobFileParser = JobFileParser(knownModels: ["tiny", "shapes"],
                                                                     nativeSize: nativeSizes)) throws -> [JobSpec] {
        try parser.parse(bytes: Array(text.utf8), file: "job.yaml")
    }

    /// `decoder: full|tiny`; `tiny` only on a model whose config entry has `tiny_vae`,
    /// checked at intake with the field's line and column and the model's name.
    func testDecoderField() throws {
        let parser = JobFileParser(knownModels: ["tiny", "shapes"], nativeSize: Self.nativeSizes,
                                   tinyVAE: { ($0 ?? "shapes") == "tiny" })
        let tiny = try XCTUnwrap(parse("prompt: a\nmodel: tiny\ndecoder: tiny\n", parser: parser).first)
        XCTAssertEqual(tiny.decoder, .tiny)
        XCTAssertEqual(tiny.resolvingSeed().request(image: 0).decoder, .tiny)
        let plain = try XCTUnwrap(parse("prompt: a\n", parser: parser).first)
        XCTAssertNil(plain.decoder)
        XCTAssertEqual(plain.request(image: 0).decoder, .full)
        XCTAssertEqual(try parse("prompt: a\ndecoder: full\n", parser: parser).first?.decoder, .full)
        let cases: [(String, JobFileParser, String)] = [
            ("prompt: a\nmodel: shapes\ndecoder: tiny\n", parser,
             "job.yaml:3:10: field 'decoder': tiny needs the model's tiny autoencoder, and model \"shapes\" has none (add tiny_vae: DIR to its models entry in the config)"),
            ("prompt: a\ndecoder: tiny\n", parser,
             "job.yaml:2:10: field 'decoder': tiny needs the model's tiny autoencoder, and the default model has none (add tiny_vae: DIR to its models entry in the config)"),
            ("prompt: a\ndecoder: tiny\n", JobFileParser(nativeSize: Self.nativeSizes),
             "job.yaml:2:10: field 'decoder': tiny needs the model's tiny autoencoder, and the default model has none (add tiny_vae: DIR to its models entry in the config)"),
        ]
        for (text, p, expected) in cases {
            XCTAssertThrowsError(try parse(text, parser: p), text) { XCTAssertEqual("\($0)", expected) }
        }
        XCTAssertThrowsError(try parse("prompt: a\ndecoder: taesd\n", parser: parser)) {
            XCTAssertTrue("\($0)".hasPrefix("job.yaml:2:10: field 'decoder':") && "\($0)".contains("full, tiny"), "\($0)")
        }
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
        let job = try XCTUnwrap(try parse("prompt: x\n", parser: JobFileParser(defaults: defaults, nativeSize: Self.nativeSizes)).first)
        XCTAssertEqual(job.width, 128, "the config default")
        XCTAssertEqual(job.height, 64, "no default: the default model's native height")
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

    func testSizeComesFromTheJobElseTheConfigElseTheModel() throws {
        XCTAssertEqual(try parse("prompt: x\n").map { [$0.width, $0.height] }, [[64, 64]])
        XCTAssertEqual(try parse("prompt: x\nmodel: tiny\n").map { [$0.width, $0.height] }, [[16, 24]])
        XCTAssertEqual(try parse("prompt: x\nmodel: tiny\nheight: 40\n").map { [$0.width, $0.height] }, [[16, 40]])
        var defaults = JobDefaults()
        defaults.width = 96
        defaults.height = 32
        let parser = JobFileParser(defaults: defaults, nativeSize: Self.nativeSizes)
        XCTAssertEqual(try parse("prompt: x\nmodel: tiny\n", parser: parser).map { [$0.width, $0.height] }, [[96, 32]])
        XCTAssertEqual(try parse("prompt: x\nwidth: 48\n", parser: parser).map { [$0.width, $0.height] }, [[48, 32]])
    }

    func testTheModelIsReadOnlyWhenASizeIsMissing() throws {
        let failing: NativeSizeLookup = { _ in throw NativeSizeError(file: "/m/unet/config.json", reason: "cannot be read") }
        let parser = JobFileParser(nativeSize: failing)
        XCTAssertEqual(try parse("prompt: x\nwidth: 32\nheight: 24\n", parser: parser).map { [$0.width, $0.height] }, [[32, 24]])
        XCTAssertThrowsError(try parse("\nprompt: x\nwidth: 32\n", parser: parser)) { error in
            XCTAssertEqual("\(error)", "job.yaml:2:1: field 'height': not given and not in the config's defaults, and the model's native size cannot be read: /m/unet/config.json: cannot be read; set height")
        }
        XCTAssertThrowsError(try parse("prompt: x\n", parser: JobFileParser())) { error in
            XCTAssertEqual("\(error)", "job.yaml:1:1: field 'width': not given, and neither the config's defaults nor a model supply it; set width")
        }
    }

    func testResolvedSizesAreCheckedAgainstLimitsAndTheVAEFactor() {
        var limits = JobLimits()
        limits.maxHeight = 48
        let big = JobFileParser(limits: limits, nativeSize: Self.nativeSizes)
        XCTAssertThrowsError(try parse("prompt: x\n", parser: big)) { error in
            XCTAssertEqual("\(error)", "job.yaml:1:1: field 'height': not given; the model's native height 64 (unet sample_size × VAE factor 4) is outside 8 to 48 (limits.max_height); set height")
        }
        var defaults = JobDefaults()
        defaults.width = 20
        XCTAssertThrowsError(try parse("prompt: x\n", parser: JobFileParser(defaults: defaults, nativeSize: Self.nativeSizes))) { error in
            XCTAssertEqual("\(error)", "job.yaml:1:1: field 'width': not given; the config's defaults.width 20 is not a multiple of 8; set width")
        }
        let sixteen: NativeSizeLookup = { _ in NativeImageSize(width: 512, height: 512, vaeFactor: 16) }
        XCTAssertThrowsError(try parse("prompt: x\nwidth: 40\n", parser: JobFileParser(nativeSize: sixteen))) { error in
            XCTAssertEqual("\(error)", "job.yaml:2:8: field 'width': 40 is not a multiple of the model's VAE factor 16")
        }
    }

    func testNativeSizeIsReadFromTheModelConfigs() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        // models/shapes: unet sample_size 32, VAE block_out_channels (32, 64) → factor 2.
        XCTAssertEqual(try NativeImageSize(modelDirectory: repository.appendingPathComponent("models/shapes")),
                       NativeImageSize(width: 64, height: 64, vaeFactor: 2))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("native-\(UUID().uuidString.prefix(8))")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        for component in ["unet", "vae"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(component), withIntermediateDirectories: true)
        }
        let vae = folder.appendingPathComponent("vae/config.json"), unet = folder.appendingPathComponent("unet/config.json")
        try #"{"block_out_channels": [128, 256, 512, 512]}"#.write(to: vae, atomically: true, encoding: .utf8)
        try #"{"sample_size": [96, 128]}"#.write(to: unet, atomically: true, encoding: .utf8)
        XCTAssertEqual(try NativeImageSize(modelDirectory: folder), NativeImageSize(width: 1024, height: 768, vaeFactor: 8))
        try #"{"in_channels": 4}"#.write(to: unet, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try NativeImageSize(modelDirectory: folder)) { error in
            XCTAssertEqual("\(error)", "\(unet.path): sample_size is missing, so the model has no native size")
        }
        try FileManager.default.removeItem(at: vae)
        XCTAssertThrowsError(try NativeImageSize(modelDirectory: folder)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(vae.path): cannot be read"), "\(error)")
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
