import Foundation
import Jobs
import Pipeline
import XCTest

/// SDXL through `diffusiond --oneshot` (issue 15): models configured with their own
/// `defaults:` give, job for job, the images diffusers' StableDiffusionXLPipeline made on the
/// tiny SDXL fixture (pipeline/tiny-sdxl.json), with AUTOMATIC1111 metadata and result.json;
/// what SDXL does not run here is refused at intake, naming the field.
final class XLDaemonTests: XCTestCase {
    static let fixtures = DaemonHarness.repository.appendingPathComponent("Tests/Fixtures")

    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xl-daemon-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// The reference image of the case whose id starts with `prefix`.
    private func reference(_ prefix: String) throws -> (image: [UInt8], seed: Int, prompt: String) {
        // Python's json module writes the sigma schedules' inf as Infinity, which is not JSON.
        let text = try String(contentsOf: Self.fixtures.appendingPathComponent("pipeline/tiny-sdxl.json"), encoding: .utf8)
        let data = Data(text.replacingOccurrences(of: "-?Infinity", with: "null", options: .regularExpression).utf8)
        let index = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try XCTUnwrap(index["cases"] as? [[String: Any]])
        let found = try XCTUnwrap(cases.first { ($0["id"] as? String)?.hasPrefix(prefix) == true }, prefix)
        let image = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent(try XCTUnwrap(found["image"] as? String))))
        return (image, try XCTUnwrap(found["seed"] as? Int), try XCTUnwrap(found["prompt"] as? String))
    }

    /// A config with the fixture as `sdxl` (SDXL base's scheduler; defaults 32×48, 4 euler
    /// steps, guidance 5) and a copy of it as `turbo` whose scheduler config is SDXL-Turbo's
    /// (EulerAncestralDiscreteScheduler, trailing spacing; defaults 1 step, guidance 0, euler_a).
    private func writeConfig(in dir: URL) throws -> URL {
        let turbo = dir.appendingPathComponent("turbo")
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("tiny-sdxl"), to: turbo)
        let schedulerURL = turbo.appendingPathComponent("scheduler/scheduler_config.json")
        var scheduler = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: schedulerURL)) as? [String: Any])
        scheduler["_class_name"] = "EulerAncestralDiscreteScheduler"
        scheduler["timestep_spacing"] = "trailing"
        try FileManager.default.removeItem(at: schedulerURL)
        try JSONSerialization.data(withJSONObject: scheduler).write(to: schedulerURL)
        let config = dir.appendingPathComponent("diffusiond.yaml")
        try """
        models:
          default: sdxl
          sdxl:
            path: \(Self.fixtures.appendingPathComponent("tiny-sdxl").path)
            defaults:
              width: 32
              height: 48
              steps: 4
              sampler: euler
              guidance: 5
          native:
            path: \(Self.fixtures.appendingPathComponent("tiny-sdxl").path)
            defaults:
              steps: 3
          turbo:
            path: \(turbo.path)
            defaults:
              width: 48
              height: 32
              steps: 1
              sampler: euler_a
              guidance: 0
        defaults:
          steps: 25

        """.write(to: config, atomically: true, encoding: .utf8)
        return config
    }

    func testJobsOnSDXLModelsMatchDiffusers() throws {
        let dir = try temporaryDirectory()
        let config = try writeConfig(in: dir)
        let euler = try reference("tiny-sdxl-euler-48x32")
        let turbo = try reference("tiny-sdxl-euler_a-trailing-")
        let long = try reference("tiny-sdxl-euler-long-")
        var files: [String] = []
        func job(_ name: String, _ text: String) throws {
            let file = dir.appendingPathComponent("\(name).yaml")
            try text.write(to: file, atomically: true, encoding: .utf8)
            files.append(file.path)
        }
        // Settings from the model entries' defaults only; no negative prompt (zeros).
        try job("base", "prompt: \(try quoted(euler.prompt))\nseed: \(euler.seed)\nname: base\n")
        try job("turbo", "prompt: \(try quoted(turbo.prompt))\nmodel: turbo\nseed: \(turbo.seed)\nname: turbo\nsnapshots: 1\n")
        // No size anywhere: the model's native 64×64; a given "" negative prompt is encoded.
        let native = try reference("tiny-sdxl-euler-default-size-")
        try job("native", "prompt: \(try quoted(native.prompt))\nnegative_prompt: \"\"\nmodel: native\nseed: \(native.seed)\nname: native\n")
        let longCase = try XCTUnwrap(try caseObject("tiny-sdxl-euler-long-"))
        try job("long", """
            prompt: \(try quoted(long.prompt))
            negative_prompt: \(try quoted(try XCTUnwrap(longCase["negative_prompt"] as? String)))
            width: 48
            height: 32
            seed: \(long.seed)
            name: long

            """)
        let out = dir.appendingPathComponent("out")
        let (status, stderr) = try DaemonHarness.runDiffusiond(["--oneshot"] + files + ["--outbox", out.path, "--config", config.path])
        XCTAssertEqual(status, 0, stderr)

        for (name, expected, size) in [("base", euler.image, [32, 48]), ("turbo", turbo.image, [48, 32]), ("long", long.image, [48, 32]),
                                       ("native", native.image, [64, 64])] {
            let png = [UInt8](try Data(contentsOf: out.appendingPathComponent("\(name)/image-001.png")))
            let image = try PNGCodec.decode(png)
            XCTAssertEqual([image.width, image.height], size, name)
            XCTAssertEqual(image.pixels.count, expected.count, name)
            let worst = zip(image.pixels, expected).map { abs(Int($0) - Int($1)) }.max() ?? 255
            XCTAssertLessThanOrEqual(worst, 1, "\(name): a pixel differs by \(worst)/255")
        }
        // AUTOMATIC1111 metadata and result.json carry the turbo defaults that made the image.
        let png = [UInt8](try Data(contentsOf: out.appendingPathComponent("turbo/image-001.png")))
        let parameters = try XCTUnwrap(try PNGChunks.read(png).compactMap(\.textEntry).first { $0.keyword == "parameters" }?.text)
        for part in ["Steps: 1", "Sampler: Euler a", "CFG scale: 0", "Seed: \(turbo.seed)", "Size: 48x32", "Model: turbo"] {
            XCTAssertTrue(parameters.contains(part), "\(part) missing from \(parameters)")
        }
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("turbo/result.json"))) as? [String: Any])
        XCTAssertEqual(result["status"] as? String, "done")
        XCTAssertEqual(result["steps"] as? Int, 1)
        XCTAssertEqual(result["sampler"] as? String, "euler_a")
        // Previews (snapshots: 1) in SDXL's latent space.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("turbo/steps").path), ["image-001-step-001.png"])
        // The long prompt's truncation is a warning of the job, as for SD.
        let longResult = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("long/result.json"))) as? [String: Any])
        let warnings = longResult["warnings"] as? [String] ?? []
        XCTAssertTrue(warnings.contains { $0.hasPrefix("prompt truncated to 77 tokens") }, "\(warnings)")
        XCTAssertTrue(stderr.contains("prompt truncated to 77 tokens"), stderr)
    }

    /// img2img, the hires fix and chunked prompts on an SDXL model are refused at intake, naming the
    /// file, line and field; nothing runs.
    func testUnsupportedFeaturesAreRefusedAtIntake() throws {
        let dir = try temporaryDirectory()
        let config = try writeConfig(in: dir)
        let picture = dir.appendingPathComponent("in.png")
        try Data(try PNGCodec.encode(RGBImage(width: 32, height: 48, pixels: [UInt8](repeating: 90, count: 32 * 48 * 3)))).write(to: picture)
        for (body, field) in [("init_image: \(picture.path)\n", "init_image"), ("upscale: 2\n", "upscale"),
                              ("long_prompt: chunk\n", "long_prompt")] {
            let job = dir.appendingPathComponent("refused.yaml")
            try "prompt: a cat\nmodel: turbo\n\(body)".write(to: job, atomically: true, encoding: .utf8)
            let out = dir.appendingPathComponent("out-\(field)")
            let (status, stderr) = try DaemonHarness.runDiffusiond(["--oneshot", job.path, "--outbox", out.path, "--config", config.path])
            XCTAssertEqual(status, 65, stderr)
            XCTAssertTrue(stderr.contains("refused.yaml:3:") && stderr.contains(field) && stderr.contains("SDXL"), stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("refused/image-001.png").path))
        }
    }

    /// `--oneshot --model DIR` reads the folder's family too.
    func testOneshotWithModelFolderRefusesAtIntake() throws {
        let dir = try temporaryDirectory()
        let job = dir.appendingPathComponent("hires.yaml")
        try "prompt: a cat\nwidth: 32\nheight: 32\nupscale: 2\n".write(to: job, atomically: true, encoding: .utf8)
        let (status, stderr) = try DaemonHarness.runDiffusiond(["--oneshot", job.path, "--outbox", dir.appendingPathComponent("out").path,
                                                                "--model", Self.fixtures.appendingPathComponent("tiny-sdxl").path])
        XCTAssertEqual(status, 65, stderr)
        XCTAssertTrue(stderr.contains("hires.yaml:4:10: field 'upscale'") && stderr.contains("SDXL model"), stderr)
    }

    /// `--check-config` accepts SDXL folders, and names a model_index.json it cannot read.
    func testCheckConfigReadsTheFamily() throws {
        let dir = try temporaryDirectory()
        let config = try writeConfig(in: dir)
        let (status, stderr) = try DaemonHarness.runDiffusiond(["--config", config.path, "--check-config"])
        XCTAssertEqual(status, 0, stderr)
        let index = dir.appendingPathComponent("turbo/model_index.json")
        try "{\"_class_name\": \"StableDiffusionXLPipeline\",".write(to: index, atomically: true, encoding: .utf8)
        let (broken, brokenErr) = try DaemonHarness.runDiffusiond(["--config", config.path, "--check-config"])
        XCTAssertEqual(broken, 78, brokenErr)
        XCTAssertTrue(brokenErr.contains("model turbo") && brokenErr.contains(index.path) && brokenErr.contains("invalid JSON"), brokenErr)
    }

    private func caseObject(_ prefix: String) throws -> [String: Any]? {
        // Python's json module writes the sigma schedules' inf as Infinity, which is not JSON.
        let text = try String(contentsOf: Self.fixtures.appendingPathComponent("pipeline/tiny-sdxl.json"), encoding: .utf8)
        let data = Data(text.replacingOccurrences(of: "-?Infinity", with: "null", options: .regularExpression).utf8)
        let index = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (index["cases"] as? [[String: Any]])?.first { ($0["id"] as? String)?.hasPrefix(prefix) == true }
    }

    /// `text` as a JSON string literal, which YAML reads as a double-quoted scalar.
    private func quoted(_ text: String) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }
}
