import Foundation
import Jobs
import XCTest

/// Issue 16 through the executable: a `models:` entry with `tiny_vae`, a job with
/// `decoder: tiny` gives diffusers' image (StableDiffusionPipeline with vae=AutoencoderTiny,
/// Tests/Fixtures/tiny-taesd-x2), records the decoder in the PNG's `parameters` and in
/// result.json, and writes its step previews; `decoder: tiny` on a model without a tiny VAE
/// is refused at intake naming the field and the model.
final class TinyVAEDaemonTests: XCTestCase {
    static let fixtures = DaemonHarness.repository.appendingPathComponent("Tests/Fixtures")

    private func run(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        try DaemonHarness.runDiffusiond(arguments)
    }

    func testTinyDecoderJobAndPreviews() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-vae-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("diffusiond.yaml")
        try """
        models:
          default: sd1
          sd1:
            path: \(Self.fixtures.appendingPathComponent("tiny-sd1").path)
            tiny_vae: \(Self.fixtures.appendingPathComponent("tiny-taesd-x2").path)
          plain: \(Self.fixtures.appendingPathComponent("tiny-sd1").path)

        """.write(to: config, atomically: true, encoding: .utf8)
        XCTAssertEqual(try run(["--config", config.path, "--check-config"]).status, 0)

        let job = dir.appendingPathComponent("cat.yaml")
        try """
        prompt: a photo of a cat
        width: 32
        height: 32
        steps: 6
        sampler: euler
        guidance: 7.5
        seed: 3
        decoder: tiny
        snapshots: 3

        """.write(to: job, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out")
        let (status, stderr) = try run(["--oneshot", job.path, "--outbox", out.path, "--config", config.path])
        XCTAssertEqual(status, 0, stderr)
        let png = [UInt8](try Data(contentsOf: out.appendingPathComponent("cat/image-001.png")))
        let image = try PNGCodec.decode(png)
        let reference = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent("tiny-taesd-x2/pipeline-tiny-sd1.rgb")))
        XCTAssertEqual(image.pixels.count, reference.count)
        XCTAssertLessThanOrEqual(zip(image.pixels, reference).map { abs(Int($0) - Int($1)) }.max() ?? 255, 1)
        let parameters = try PNGChunks.read(png).compactMap(\.textEntry).first { $0.keyword == "parameters" }?.text
        XCTAssertTrue(parameters?.hasSuffix(", VAE Decoder: TAESD") == true, parameters ?? "no parameters")
        let result = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("cat/result.json"))) as? [String: Any]
        XCTAssertEqual(result?["decoder"] as? String, "tiny")
        let steps = try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("cat/steps").path).sorted()
        XCTAssertEqual(steps, ["image-001-step-003.png", "image-001-step-006.png"])
        // The last preview is the tiny VAE's decode of the final step's estimate: the image, or nearly.
        let last = try PNGCodec.decode([UInt8](try Data(contentsOf: out.appendingPathComponent("cat/steps/image-001-step-006.png"))))
        let mean = Double(zip(last.pixels, image.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(image.pixels.count)
        XCTAssertLessThanOrEqual(mean, 3, "last preview: mean difference \(mean)/255 from the image")

        let refused = dir.appendingPathComponent("plain.yaml")
        try "prompt: a photo of a cat\nmodel: plain\nwidth: 32\nheight: 32\ndecoder: tiny\n".write(to: refused, atomically: true, encoding: .utf8)
        let (code, message) = try run(["--oneshot", refused.path, "--outbox", out.path, "--config", config.path])
        XCTAssertEqual(code, 65, message)
        XCTAssertTrue(message.contains("plain.yaml:5:10: field 'decoder': tiny needs the model's tiny autoencoder, and model \"plain\" has none"), message)
    }
}
