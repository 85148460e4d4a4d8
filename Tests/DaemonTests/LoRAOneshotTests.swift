import ControlProtocol
import Daemon
import Foundation
import Jobs
import XCTest

/// LoRAs end to end through `diffusiond --oneshot` on the tiny fixture model with the
/// fixture LoRAs (Tests/Fixtures/lora) as `lora_dir`.
final class LoRAOneshotTests: XCTestCase {
    static let loraDir = DaemonHarness.repository.appendingPathComponent("Tests/Fixtures/lora")

    /// Runs the job files with a config naming the fixture model and `lora_dir`; returns
    /// (status, outbox, stderr).
    func oneshot(_ jobs: [String: String], loraDir: URL? = LoRAOneshotTests.loraDir) throws -> (Int32, URL, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lora-oneshot-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        var config = "models:\n  tiny: \(try XCTUnwrap(DaemonHarness.fixtureModel).path)\nthreads: 2\n"
        if let loraDir { config += "lora_dir: \(loraDir.path)\n" }
        let configFile = dir.appendingPathComponent("diffusiond.yaml")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        let (status, stderr) = try DaemonHarness.oneshot(jobs, in: dir, arguments: [
            "--outbox", dir.appendingPathComponent("out").path, "--config", configFile.path])
        return (status, dir.appendingPathComponent("out"), stderr)
    }

    func parameters(_ png: URL) throws -> String {
        let chunks = try PNGChunks.read([UInt8](try Data(contentsOf: png)))
        return try XCTUnwrap(chunks.compactMap(\.textEntry).first { $0.keyword == "parameters" }?.text)
    }

    func result(_ folder: URL) throws -> JobResult {
        try JSONDecoder().decode(JobResult.self, from: Data(contentsOf: folder.appendingPathComponent("result.json")))
    }

    /// An LCM-LoRA-style job: `sampler: lcm`, 4 steps, guidance 1, a LoRA; the same job
    /// without the LoRA makes another image, and the metadata records the LoRA as the web UI does.
    func testLCMStyleJobWithALoRARunsAndRecordsItsHash() throws {
        let common = "sampler: lcm\nsteps: 4\nguidance: 1\nseed: 7\nwidth: 32\nheight: 32\n"
        let (status, out, stderr) = try oneshot([
            "a-lcm": "prompt: \"a photo of a cat <lora:kohya:0.7>\"\nloras: [{name: peft, weight: 0.3}]\nname: lcm\n" + common,
            "b-plain": "prompt: a photo of a cat\nname: plain\n" + common,
        ])
        XCTAssertEqual(status, 0, stderr)
        let text = try parameters(out.appendingPathComponent("lcm/image-001.png"))
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "a photo of a cat <lora:kohya:0.7> <lora:peft:0.3>")
        XCTAssertTrue(text.contains("Sampler: LCM, CFG scale: 1, Seed: 7, Size: 32x32, Model hash: b3162c4ec6, Model: tiny, RNG: CPU, Lora hashes: \"peft: "), text)
        XCTAssertTrue(text.contains(", kohya: bbf5d3bec8a8\""), text)
        let recorded = try result(out.appendingPathComponent("lcm"))
        XCTAssertEqual(recorded.status, "done")
        var expected = JobParameters(prompt: "", model: "")
        expected.appendLoRA(name: "peft", file: Self.loraDir.appendingPathComponent("peft.safetensors").path, weight: 0.3)
        expected.appendLoRA(name: "kohya", file: Self.loraDir.appendingPathComponent("kohya.safetensors").path, weight: 0.7)
        XCTAssertEqual(recorded.loras, expected.loras)
        XCTAssertNil(try result(out.appendingPathComponent("plain")).loras)
        XCTAssertFalse(try parameters(out.appendingPathComponent("plain/image-001.png")).contains("Lora hashes"))
        let with = try PNGCodec.decode([UInt8](try Data(contentsOf: out.appendingPathComponent("lcm/image-001.png"))))
        let without = try PNGCodec.decode([UInt8](try Data(contentsOf: out.appendingPathComponent("plain/image-001.png"))))
        XCTAssertNotEqual(with.pixels, without.pixels, "the LoRA changes the image")
    }

    /// A LoRA for another model: the job fails with a one-line error naming file and key;
    /// the next job runs (on the unpatched model).
    /// Both fixture LoRAs at 0.7 through the executable (one by `loras:`, one by a prompt tag)
    /// give diffusers' `load_lora_weights` images (Tests/Fixtures/lora, tools/fixtures/lora_refs.py)
    /// within 1/255 at every pixel.
    func testFixtureLoRAsGiveDiffusersImagesThroughTheDaemon() throws {
        let render = "negative_prompt: blurry\nsampler: euler\nwidth: 32\nheight: 32\nsteps: 5\nguidance: 7.5\nseed: 4242\n"
        let (status, out, stderr) = try oneshot([
            "kohya": "prompt: a photo of a cat\nloras: [{name: kohya, weight: 0.7}]\nname: kohya\n" + render,
            "peft": "prompt: \"a photo of a cat<lora:peft:0.7>\"\nname: peft\n" + render,
        ])
        XCTAssertEqual(status, 0, stderr)
        for name in ["kohya", "peft"] {
            let image = try PNGCodec.decode([UInt8](try Data(contentsOf: out.appendingPathComponent("\(name)/image-001.png"))))
            let reference = [UInt8](try Data(contentsOf: Self.loraDir.appendingPathComponent("\(name).rgb")))
            XCTAssertEqual(image.pixels.count, reference.count, name)
            let worst = zip(image.pixels, reference).map { abs(Int($0) - Int($1)) }.max() ?? 255
            XCTAssertLessThanOrEqual(worst, 1, "\(name): a pixel differs by \(worst)/255 from diffusers")
        }
    }

    func testALoRAThatDoesNotFitFailsTheJobNamingFileAndKey() throws {
        let (status, out, _) = try oneshot([
            "a-bad": "prompt: x\nloras: [bad-shape]\nsteps: 1\nwidth: 32\nheight: 32\nseed: 1\nname: bad\n",
            "b-good": "prompt: x\nsteps: 1\nwidth: 32\nheight: 32\nseed: 1\nname: good\n",
        ])
        XCTAssertEqual(status, 70, "EX_SOFTWARE: a job failed")
        let failed = try result(out.appendingPathComponent("bad"))
        XCTAssertEqual(failed.status, "failed")
        let message = try XCTUnwrap(failed.error)
        XCTAssertTrue(message.contains("bad-shape.safetensors") && message.contains("attn2_to_k.lora_down.weight"), message)
        XCTAssertFalse(message.contains("\n"))
        XCTAssertEqual(try result(out.appendingPathComponent("good")).status, "done")
    }

    func testCheckConfigReportsLoraDir() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lora-check-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        func check(_ loraDir: String) throws -> (Int32, String) {
            let file = dir.appendingPathComponent("c.yaml")
            try "models:\n  tiny: \(try XCTUnwrap(DaemonHarness.fixtureModel).path)\nlora_dir: \(loraDir)\n"
                .write(to: file, atomically: true, encoding: .utf8)
            let p = Process(), pipe = Pipe()
            p.executableURL = URL(fileURLWithPath: try DaemonHarness.binary())
            p.arguments = ["--config", file.path, "--check-config"]
            p.standardOutput = pipe
            p.standardError = pipe
            try p.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, output)
        }
        let (good, goodOut) = try check(Self.loraDir.path)
        XCTAssertEqual(good, 0, goodOut)
        XCTAssertTrue(goodOut.contains("loras   \(Self.loraDir.path)"), goodOut)
        let (bad, badOut) = try check("/nonexistent/loras")
        XCTAssertEqual(bad, 78, badOut)
        XCTAssertTrue(badOut.contains("lora_dir /nonexistent/loras is not a folder"), badOut)
    }

    func testLoRAJobsAreRefusedAtIntakeWithoutLoraDirOrWithAPath() throws {
        let (s1, _, e1) = try oneshot(["j": "prompt: x\nloras: [kohya]\n"], loraDir: nil)
        XCTAssertEqual(s1, 65, "EX_DATAERR")
        XCTAssertTrue(e1.contains("j.yaml:2:9: field 'loras.name': LoRA \"kohya\": no lora_dir is configured"), e1)
        let (s2, _, e2) = try oneshot(["j": "prompt: a <lora:../lora/kohya:1> cat\n"])
        XCTAssertEqual(s2, 65)
        XCTAssertTrue(e2.contains("j.yaml:1:9: field 'prompt': \"../lora/kohya\" is not a LoRA name"), e2)
    }
}
