import Foundation
import Daemon
import Jobs
import Pipeline
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// End to end with the real engine on the tiny SD1-like fixture model.
final class GenerationTests: XCTestCase {
    /// Runs `yaml` with `--oneshot` on the fixture model: given by `--model`, or with `config`
    /// (YAML text) as `--config`, whose `models:` must name the fixture itself.
    func oneshot(_ yaml: String, name: String = "job", config: String? = nil) throws -> (Int32, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gen-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let job = dir.appendingPathComponent("\(name).yaml")
        try yaml.write(to: job, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try DaemonHarness.binary())
        p.arguments = ["--oneshot", job.path, "--outbox", dir.appendingPathComponent("out").path]
        if let config {
            let file = dir.appendingPathComponent("diffusiond.yaml")
            try config.write(to: file, atomically: true, encoding: .utf8)
            p.arguments? += ["--config", file.path]
        } else {
            p.arguments? += ["--model", try XCTUnwrap(DaemonHarness.fixtureModel).path]
        }
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus, dir.appendingPathComponent("out"))
    }

    /// The oneshot PNG equals diffusers' StableDiffusionPipeline output recorded by the fixtures
    /// script (case tiny-sd1-euler-default-32x32-s1000) within 1/255, and carries the
    /// AUTOMATIC1111 parameters.
    func testOneshotImageMatchesDiffusersAndCarriesParameters() throws {
        let (status, out) = try oneshot("""
        prompt: a photo of a cat
        width: 32
        height: 32
        steps: 5
        sampler: euler
        guidance: 7.5
        seed: 1000
        snapshots: 2
        name: cat
        """)
        XCTAssertEqual(status, 0)
        let png = [UInt8](try Data(contentsOf: out.appendingPathComponent("cat/image-001.png")))
        let image = try PNGCodec.decode(png)
        let reference = [UInt8](try Data(contentsOf: DaemonHarness.repository
            .appendingPathComponent("Tests/Fixtures/pipeline/tiny-sd1-euler-default-32x32-s1000.rgb")))
        XCTAssertEqual(image.pixels.count, reference.count)
        let worst = zip(image.pixels, reference).map { abs(Int($0) - Int($1)) }.max() ?? 999
        XCTAssertLessThanOrEqual(worst, 1)
        let parameters = try PNGChunks.read(png).compactMap(\.textEntry).first { $0.keyword == "parameters" }
        XCTAssertEqual(parameters?.text, "a photo of a cat\nSteps: 5, Sampler: Euler, CFG scale: 7.5, Seed: 1000, Size: 32x32, Model hash: b3162c4ec6, Model: tiny-sd1, RNG: CPU")
        let steps = try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("cat/steps").path).sorted()
        XCTAssertEqual(steps, ["image-001-step-002.png", "image-001-step-004.png"])
        let result = try JSONDecoder().decode(JobResultProbe.self, from: Data(contentsOf: out.appendingPathComponent("cat/result.json")))
        XCTAssertEqual(result.status, "done")
        XCTAssertEqual(result.images.map(\.seed), [1000])
    }

    /// The fixture model's native size as diffusers computes it, from its configs:
    /// unet `sample_size` × 2^(len(vae `block_out_channels`) − 1).
    func fixtureNativeSize() throws -> Int {
        let model = try XCTUnwrap(DaemonHarness.fixtureModel)
        func config(_ component: String) throws -> [String: Any] {
            let data = try Data(contentsOf: model.appendingPathComponent("\(component)/config.json"))
            return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        }
        let sampleSize = try XCTUnwrap(try config("unet")["sample_size"] as? Int)
        let blocks = try XCTUnwrap(try config("vae")["block_out_channels"] as? [Int])
        return sampleSize << (blocks.count - 1)
    }

    /// Size of `folder/image-001.png`, the `Size:` of its parameters and result.json's size.
    func recordedSizes(_ folder: URL) throws -> (png: [Int], parameters: String?, result: [Int?]) {
        let png = [UInt8](try Data(contentsOf: folder.appendingPathComponent("image-001.png")))
        let image = try PNGCodec.decode(png)
        let parameters = try PNGChunks.read(png).compactMap(\.textEntry).first { $0.keyword == "parameters" }?.text
        let size = parameters?.components(separatedBy: ", ").first { $0.hasPrefix("Size: ") }
        let result = try JSONDecoder().decode(JobResult.self, from: Data(contentsOf: folder.appendingPathComponent("result.json")))
        return ([image.width, image.height], size, [result.width, result.height])
    }

    /// A job without width/height, with no config defaults for them, gets the model's native
    /// size (as diffusers does), recorded in the PNG, its parameters and result.json.
    func testMissingSizeIsTheModelsNativeSize() throws {
        let side = try fixtureNativeSize()
        let (status, out) = try oneshot("prompt: a cat\nsteps: 1\nseed: 5\nname: native\n")
        XCTAssertEqual(status, 0)
        let sizes = try recordedSizes(out.appendingPathComponent("native"))
        XCTAssertEqual(sizes.png, [side, side])
        XCTAssertEqual(sizes.parameters, "Size: \(side)x\(side)")
        XCTAssertEqual(sizes.result, [side, side])
    }

    /// The config's defaults override the native size, and a job's own value overrides both.
    func testConfigDefaultsAndJobValuesOverrideTheNativeSize() throws {
        let side = try fixtureNativeSize()
        let config = """
        models:
          tiny: \(try XCTUnwrap(DaemonHarness.fixtureModel).path)
        defaults:
          width: \(side + 16)
          height: \(side + 8)
          steps: 1
        """
        let (s1, defaulted) = try oneshot("prompt: a cat\nseed: 5\nname: d\n", config: config)
        let (s2, given) = try oneshot("prompt: a cat\nseed: 5\nwidth: \(side + 24)\nname: g\n", config: config)
        XCTAssertEqual([s1, s2], [0, 0])
        let fromDefaults = try recordedSizes(defaulted.appendingPathComponent("d"))
        XCTAssertEqual(fromDefaults.png, [side + 16, side + 8])
        XCTAssertEqual(fromDefaults.parameters, "Size: \(side + 16)x\(side + 8)")
        XCTAssertEqual(fromDefaults.result, [side + 16, side + 8])
        let fromJob = try recordedSizes(given.appendingPathComponent("g"))
        XCTAssertEqual(fromJob.png, [side + 24, side + 8])
        XCTAssertEqual(fromJob.result, [side + 24, side + 8])
    }

    /// The model entry's `weights:` mode is recorded in result.json (always) and in the PNG's
    /// parameters (`Weights: f16` when not `stored`), since `f16` changes the images' last bits.
    func testWeightsModeIsRecordedInResultAndParameters() throws {
        let model = try XCTUnwrap(DaemonHarness.fixtureModel).path
        var recorded: [String: (result: String?, parameters: String?)] = [:]
        for mode in ["stored", "f16"] {
            let config = "models:\n  tiny: {path: \(model), weights: \(mode)}\n"
            let (status, out) = try oneshot("prompt: a cat\nwidth: 32\nheight: 32\nsteps: 1\nseed: 3\nname: w\n", config: config)
            XCTAssertEqual(status, 0, mode)
            let folder = out.appendingPathComponent("w")
            let result = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("result.json")))
            let png = [UInt8](try Data(contentsOf: folder.appendingPathComponent("image-001.png")))
            let parameters = try PNGChunks.read(png).compactMap(\.textEntry).first { $0.keyword == "parameters" }?.text
            recorded[mode] = ((result as? [String: Any])?["weights"] as? String,
                              parameters?.components(separatedBy: ", ").first { $0.hasPrefix("Weights: ") })
        }
        XCTAssertEqual(recorded["stored"]?.result, "stored")
        XCTAssertNil(recorded["stored"]?.parameters ?? nil)
        XCTAssertEqual(recorded["f16"]?.result, "f16")
        XCTAssertEqual(recorded["f16"]?.parameters, "Weights: f16")
    }

    /// A job resumed after its model entry's `weights:` changed keeps its earlier images and
    /// says which were made with which mode, since result.json's `weights` names the mode of
    /// the images made last.
    func testImagesKeptFromAnotherWeightsModeAreNamedInAWarning() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kept-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let job = dir.appendingPathComponent("w.yaml"), config = dir.appendingPathComponent("diffusiond.yaml")
        let out = dir.appendingPathComponent("out"), folder = out.appendingPathComponent("w")
        try "prompt: a cat\nwidth: 32\nheight: 32\nsteps: 1\nseed: 3\ncount: 3\n".write(to: job, atomically: true, encoding: .utf8)
        let model = try XCTUnwrap(DaemonHarness.fixtureModel).path
        func run(_ mode: String) throws -> [String: Any] {
            try "models:\n  tiny: {path: \(model), weights: \(mode)}\n".write(to: config, atomically: true, encoding: .utf8)
            let (status, err) = try DaemonHarness.runDiffusiond(["--oneshot", job.path, "--outbox", out.path, "--config", config.path])
            XCTAssertEqual(status, 0, err)
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("result.json")))
            return try XCTUnwrap(json as? [String: Any])
        }
        let first = try run("f16")
        let vocabulary = "prompt: words not in the model's vocabulary: \"cat\""
        XCTAssertEqual(first["warnings"] as? [String], [vocabulary])
        try FileManager.default.removeItem(at: folder.appendingPathComponent("image-002.png"))
        let second = try run("stored")
        XCTAssertEqual(second["weights"] as? String, "stored")
        XCTAssertEqual(second["warnings"] as? [String], [vocabulary,
            "kept from an earlier attempt with other weights: image-001.png, image-003.png (f16); "
                + "the images made now, and result.json's \"weights\", use stored"])
        let png = [UInt8](try Data(contentsOf: folder.appendingPathComponent("image-002.png")))
        let parameters = try XCTUnwrap(try PNGChunks.read(png).compactMap(\.textEntry).first { $0.keyword == "parameters" }?.text)
        XCTAssertEqual(A1111Parameters.recordedWeights(parameters), "stored")
    }

    /// Image i of a `count` job is the image a lone job with seed + i gives.
    func testEachImageOfACountReproducesAloneFromItsSeed() throws {
        let (s1, batch) = try oneshot("prompt: a cat\nwidth: 32\nheight: 32\nsteps: 3\nseed: 41\ncount: 3\nname: b\n")
        let (s2, alone) = try oneshot("prompt: a cat\nwidth: 32\nheight: 32\nsteps: 3\nseed: 43\nname: a\n")
        XCTAssertEqual([s1, s2], [0, 0])
        let third = try PNGCodec.decode([UInt8](try Data(contentsOf: batch.appendingPathComponent("b/image-003.png"))))
        let single = try PNGCodec.decode([UInt8](try Data(contentsOf: alone.appendingPathComponent("a/image-001.png"))))
        XCTAssertEqual(third, single)
    }

    /// SIGTERM during a long job: exit 0, no result yet; at the next start the job resumes
    /// (same attempt count, since the daemon did not crash) and finishes.
    func testSIGTERMStopsBetweenStepsAndTheJobResumes() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        try daemon.drop("long.yaml", "prompt: a cat\nsteps: 150\ncount: 2\nsnapshots: 1\nseed: 4\n")
        let steps = daemon.outbox.appendingPathComponent("000001/steps")
        daemon.waitUntil("first step snapshot") { !daemon.names(steps).isEmpty }
        XCTAssertEqual(daemon.stop(SIGTERM), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.outbox.appendingPathComponent("000001/result.json").path))
        XCTAssertTrue(daemon.log.contains("job 000001 interrupted by shutdown"))
        try daemon.start()
        daemon.waitUntil("resumed job finished", limit: 600) { daemon.results.count == 1 }
        XCTAssertEqual(daemon.stop(), 0)
        let result = try XCTUnwrap(daemon.results.first?.result)
        XCTAssertEqual(result.status, "done")
        XCTAssertEqual(result.attempts, 1)
        XCTAssertEqual(result.images.map(\.seed), [4, 5])
    }

    func testCancelOfARunningJob() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        try daemon.drop("long.yaml", "prompt: a cat\nsteps: 150\ncount: 4\nsnapshots: 1\n")
        daemon.waitUntil("running") { !daemon.names(daemon.outbox.appendingPathComponent("000001/steps")).isEmpty }
        XCTAssertEqual(try daemon.control(["cancel", "000001"]).0, 0)
        daemon.waitUntil("cancelled") { daemon.results.first?.result.status == "cancelled" }
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual(daemon.results.first?.result.error, "cancelled while running")
    }
}

/// The part of result.json these tests read.
struct JobResultProbe: Decodable {
    struct Image: Decodable { var seed: UInt64 }
    var status: String
    var images: [Image]
}
