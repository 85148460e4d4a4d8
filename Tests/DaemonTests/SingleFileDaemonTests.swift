import Foundation
import Jobs
import XCTest

/// Issue 14 through the executable: a config whose `models:` entries name single-file
/// checkpoints (mapping form with `tokenizer` and `prediction`) gives, via `diffusiond --oneshot`,
/// the images diffusers' `from_single_file` made (Tests/Fixtures/single-file, made by
/// tools/fixtures/single_file_refs.py); broken or foreign model files are one-line errors at
/// `--check-config`, and a job on one fails alone while the next job on a good model is served.
final class SingleFileDaemonTests: XCTestCase {
    static let fixtures = DaemonHarness.repository.appendingPathComponent("Tests/Fixtures")

    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("single-file-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    private func run(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        try DaemonHarness.runDiffusiond(arguments)
    }

    private var singleFile: URL { Self.fixtures.appendingPathComponent("single-file") }

    /// The three ways the fixtures' cases load: SD1 file, SD2 file (v by default), SD2 with
    /// `prediction: epsilon`; each with its tiny model's tokenizer folder.
    private func modelsSection() -> String {
        let sd1 = singleFile.appendingPathComponent("tiny-sd1.safetensors").path
        let sd2 = singleFile.appendingPathComponent("tiny-sd2.safetensors").path
        let tok1 = Self.fixtures.appendingPathComponent("tiny-sd1/tokenizer").path
        let tok2 = Self.fixtures.appendingPathComponent("tiny-sd2/tokenizer").path
        return """
        models:
          default: sd1
          sd1:
            path: \(sd1)
            tokenizer: \(tok1)
          sd2:
            path: \(sd2)
            tokenizer: \(tok2)
          sd2eps: {path: \(sd2), tokenizer: \(tok2), prediction: epsilon}

        """
    }

    func testSingleFileModelsGiveDiffusersImages() throws {
        let text = try String(contentsOf: singleFile.appendingPathComponent("index.json"), encoding: .utf8)
        let index = try JSONDecoder().decode(OneshotReferenceTests.Index.self, from: Data(text.utf8))
        XCTAssertEqual(index.cases.count, 4)
        let dir = try temporaryDirectory()
        let config = dir.appendingPathComponent("diffusiond.yaml")
        try modelsSection().write(to: config, atomically: true, encoding: .utf8)
        XCTAssertEqual(try run(["--config", config.path, "--check-config"]).status, 0)
        var files: [String] = []
        for testCase in index.cases {
            let model = testCase.model == "tiny-sd1" ? "sd1" : (testCase.id.hasSuffix("-epsilon") ? "sd2eps" : "sd2")
            let file = dir.appendingPathComponent("\(testCase.jobName).yaml")
            try (testCase.yaml() + "model: \(model)\n").write(to: file, atomically: true, encoding: .utf8)
            files.append(file.path)
        }
        let out = dir.appendingPathComponent("out")
        let (status, stderr) = try run(["--oneshot"] + files + ["--outbox", out.path, "--config", config.path])
        XCTAssertEqual(status, 0, stderr)
        for testCase in index.cases {
            let png = try Data(contentsOf: out.appendingPathComponent("\(testCase.jobName)/image-001.png"))
            let image = try PNGCodec.decode([UInt8](png))
            let reference = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent(testCase.image)))
            XCTAssertEqual([image.width, image.height], [testCase.width, testCase.height], testCase.id)
            XCTAssertEqual(image.pixels.count, reference.count, testCase.id)
            let worst = zip(image.pixels, reference).map { abs(Int($0) - Int($1)) }.max() ?? 255
            XCTAssertLessThanOrEqual(worst, 1, "\(testCase.id): a pixel differs by \(worst)/255 from diffusers")
        }
    }

    /// `--model FILE --tokenizer DIR` without a config, and the refusal without a tokenizer.
    func testOneshotModelFlagTakesASingleFile() throws {
        let dir = try temporaryDirectory()
        let job = dir.appendingPathComponent("cat.yaml")
        try "prompt: a photo of a cat\nwidth: 32\nheight: 32\nsteps: 5\nsampler: euler\nguidance: 7.5\nseed: 2000\n"
            .write(to: job, atomically: true, encoding: .utf8)
        let file = singleFile.appendingPathComponent("tiny-sd1.safetensors").path
        let out = dir.appendingPathComponent("out")
        let (status, stderr) = try run(["--oneshot", job.path, "--outbox", out.path, "--model", file,
                                        "--tokenizer", Self.fixtures.appendingPathComponent("tiny-sd1/tokenizer").path])
        XCTAssertEqual(status, 0, stderr)
        let image = try PNGCodec.decode([UInt8](try Data(contentsOf: out.appendingPathComponent("cat/image-001.png"))))
        let reference = [UInt8](try Data(contentsOf: singleFile.appendingPathComponent("tiny-sd1-euler-32x32-s2000.rgb")))
        XCTAssertEqual(image.pixels.count, reference.count)
        XCTAssertLessThanOrEqual(zip(image.pixels, reference).map { abs(Int($0) - Int($1)) }.max() ?? 255, 1)

        let (noTokenizer, message) = try run(["--oneshot", job.path, "--outbox", dir.appendingPathComponent("out2").path, "--model", file])
        XCTAssertEqual(noTokenizer, 70)
        XCTAssertTrue(message.contains("single-file checkpoint, which carries no tokenizer: set clip_tokenizer"), message)
    }

    /// Bad model files: each is one line naming the file at `--check-config` (exit 78); a job on
    /// one fails with that reason in result.json while the job after it, on a good model, is done.
    func testBadModelFilesAreOneLineErrorsAndOtherJobsAreServed() throws {
        let dir = try temporaryDirectory()
        let good = singleFile.appendingPathComponent("tiny-sd1.safetensors")
        let bytes = try Data(contentsOf: good)
        let truncated = dir.appendingPathComponent("truncated.safetensors")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        let pickle = dir.appendingPathComponent("model.ckpt")
        try Data("PK\u{3}\u{4}not really".utf8).write(to: pickle)
        let lora = dir.appendingPathComponent("lora.safetensors")
        try safetensors(["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": [4, 32]]).write(to: lora)
        let sdxl = dir.appendingPathComponent("sdxl.safetensors")
        try safetensors(["conditioner.embedders.1.model.positional_embedding": [77, 8],
                         "model.diffusion_model.input_blocks.0.0.weight": [8, 4, 3, 3]]).write(to: sdxl)
        let tok = Self.fixtures.appendingPathComponent("tiny-sd1/tokenizer").path
        let config = dir.appendingPathComponent("diffusiond.yaml")
        try """
        clip_tokenizer: \(tok)
        models:
          default: good
          good: \(good.path)
          truncated: \(truncated.path)
          pickle: \(pickle.path)
          lora: \(lora.path)
          sdxl: \(sdxl.path)

        """.write(to: config, atomically: true, encoding: .utf8)
        let (checkStatus, checkErr) = try run(["--config", config.path, "--check-config"])
        XCTAssertEqual(checkStatus, 78)
        let lines = checkErr.split(separator: "\n").map(String.init)
        for (name, file, words) in [("truncated", truncated.path, "truncated.safetensors"), ("pickle", pickle.path, "python3 -c"),
                                    ("lora", lora.path, "LoRA"), ("sdxl", sdxl.path, "SDXL")] {
            let line = lines.first { $0.contains("model \(name): ") }
            XCTAssertNotNil(line, "no error line for \(name): \(checkErr)")
            XCTAssertTrue(line?.contains(file) ?? false, "\(name): \(line ?? "")")
            XCTAssertTrue(line?.contains(words) ?? false, "\(name): \(line ?? "")")
        }
        XCTAssertFalse(lines.contains { $0.contains("model good: ") }, checkErr)

        // At run time: the broken model's job fails alone; the good one after it is done.
        var files: [String] = []
        for (index, model) in ["truncated", "pickle", "good"].enumerated() {
            let job = dir.appendingPathComponent("job\(index).yaml")
            try "prompt: a cat\nwidth: 32\nheight: 32\nsteps: 2\nseed: 1\nmodel: \(model)\nname: \(model)\n"
                .write(to: job, atomically: true, encoding: .utf8)
            files.append(job.path)
        }
        let out = dir.appendingPathComponent("out")
        let (status, stderr) = try run(["--oneshot"] + files + ["--outbox", out.path, "--config", config.path])
        XCTAssertEqual(status, 70, stderr)
        for (folder, expected) in [("truncated", "failed"), ("pickle", "failed"), ("good", "done")] {
            let result = try JSONDecoder().decode(JobResultProbe.self, from: Data(contentsOf: out.appendingPathComponent("\(folder)/result.json")))
            XCTAssertEqual(result.status, expected, folder)
        }
        let failure = try String(contentsOf: out.appendingPathComponent("pickle/result.json"), encoding: .utf8)
        XCTAssertTrue(failure.contains("model.ckpt"), failure)
        XCTAssertTrue(failure.contains("never unpickled") || failure.contains("runs code"), failure)
    }

    /// A minimal safetensors file with F32 zero tensors of the given shapes.
    private func safetensors(_ tensors: [String: [Int]]) throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for (name, shape) in tensors.sorted(by: { $0.key < $1.key }) {
            let bytes = shape.reduce(4, *)
            header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        let json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        var data = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
        data.append(json)
        data.append(Data(count: offset))
        return data
    }
}
