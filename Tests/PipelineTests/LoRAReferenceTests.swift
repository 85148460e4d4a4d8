import Foundation
import XCTest
@testable import Models
@testable import Pipeline
import Sampling

/// LoRA files (issue 14) against diffusers: tools/fixtures/lora_refs.py made a kohya-format
/// and a PEFT-format LoRA for tiny-sd1 and rendered each with `load_lora_weights` +
/// `set_adapters(weight 0.7)`. Also: merging is reversible bit for bit, and the same set
/// twice is not recomputed.
final class LoRAReferenceTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let model = fixtures.appendingPathComponent("tiny-sd1")
    static func lora(_ name: String) -> URL { fixtures.appendingPathComponent("lora/\(name).safetensors") }

    /// The render of lora/index.json: Euler, 32×32, 5 steps, guidance 7.5.
    func request(_ loras: [LoRASelection]) -> GenerationRequest {
        GenerationRequest(prompt: "a photo of a cat", negativePrompt: "blurry", width: 32, height: 32, steps: 5,
                          sampler: .euler, guidance: 7.5, seed: 4242, loras: loras)
    }

    func selection(_ name: String, _ weight: Float = 0.7) -> LoRASelection {
        LoRASelection(name: name, file: Self.lora(name), weight: weight)
    }

    func render(_ pipeline: TextToImagePipeline, _ loras: [LoRASelection]) throws -> RGBImage {
        try pipeline.generate(request(loras), snapshotEvery: 0) { _ in .proceed }
    }

    func reference(_ name: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: Self.fixtures.appendingPathComponent("lora/\(name).rgb")))
    }

    func worstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
        zip(a, b).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    /// Every parameter of the UNet and text encoder, bit patterns.
    func parameterBits(_ pipeline: TextToImagePipeline) -> [String: [UInt32]] {
        var out: [String: [UInt32]] = [:]
        for (prefix, registry) in [("unet.", pipeline.unet.parameters), ("text.", pipeline.textEncoder.parameters)] {
            for name in registry.names {
                if let t = registry[name] { out[prefix + name] = t.toArray().map(\.bitPattern) }
            }
        }
        return out
    }

    func testEachLoRAAtWeight07GivesDiffusersImage() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.model, threads: 2)
        let base = try render(pipeline, [])
        XCTAssertLessThanOrEqual(worstDifference(base.pixels, try reference("base")), 1, "base image")
        for name in ["kohya", "peft"] {
            let image = try render(pipeline, [selection(name)])
            let expected = try reference(name)
            XCTAssertEqual(image.pixels.count, expected.count)
            let worst = worstDifference(image.pixels, expected)
            print("LoRA reference \(name): worst pixel difference \(worst)/255")
            XCTAssertLessThanOrEqual(worst, 1, "\(name): worst pixel difference \(worst)/255")
            // The LoRA moves the image clearly, so the match is not the base image's.
            XCTAssertGreaterThan(worstDifference(image.pixels, base.pixels), 20, name)
        }
    }

    func testRevertingRestoresTheModelBitForBit() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.model, threads: 2)
        let before = parameterBits(pipeline)
        let base = try render(pipeline, [])
        _ = try render(pipeline, [selection("kohya"), selection("peft", -0.4)])
        XCTAssertNotEqual(parameterBits(pipeline), before)
        _ = try render(pipeline, [selection("peft")])
        let again = try render(pipeline, [])
        XCTAssertEqual(again.pixels, base.pixels)
        XCTAssertEqual(parameterBits(pipeline), before)
    }

    func testTheSameSetTwiceIsNotRecomputed() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.model, threads: 2)
        let first = try render(pipeline, [selection("kohya")])
        XCTAssertEqual(pipeline.loraMerger.statistics.merges, 1)
        XCTAssertEqual(pipeline.loraMerger.statistics.tensorsRebuilt, 93)
        let second = try render(pipeline, [selection("kohya")])
        XCTAssertEqual(second, first)
        XCTAssertEqual(pipeline.loraMerger.statistics.merges, 1, "same names and weights: merged weights reused")
        XCTAssertEqual(pipeline.loraMerger.statistics.reuses, 1)
        XCTAssertEqual(pipeline.loraMerger.statistics.tensorsRebuilt, 93)
        // Another weight is another set; the same 93 weights are rebuilt, nothing else.
        _ = try render(pipeline, [selection("kohya", 0.5)])
        XCTAssertEqual(pipeline.loraMerger.statistics.merges, 2)
        XCTAssertEqual(pipeline.loraMerger.statistics.tensorsRebuilt, 186)
        // Back to the base model: the 93 weights are restored.
        _ = try render(pipeline, [])
        XCTAssertEqual(pipeline.loraMerger.statistics.tensorsRebuilt, 279)
        _ = try render(pipeline, [])
        XCTAssertEqual(pipeline.loraMerger.statistics.merges, 3)
    }

    /// Q, K and V are one fused tensor at load; the registry's `to_k` is a view of its rows.
    func testRegistryNamesTheRowsOfFusedLayers() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.model, threads: 1)
        let p = "down_blocks.0.attentions.0.transformer_blocks.0.attn1."
        let registry = pipeline.unet.parameters
        let q = try XCTUnwrap(registry[p + "to_q.weight"]?.float32), k = try XCTUnwrap(registry[p + "to_k.weight"]?.float32)
        XCTAssertTrue(q.storage === k.storage)
        XCTAssertEqual(k.offset - q.offset, 16 * 16)
        let file = try SafeTensorsFile(path: Self.model.appendingPathComponent("unet/diffusion_pytorch_model.safetensors").path)
        XCTAssertEqual(k.toArray(), try file.floats("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k.weight"))
        let text = pipeline.textEncoder.parameters
        let tv = try XCTUnwrap(text["text_model.encoder.layers.1.self_attn.v_proj.weight"]?.float32)
        let tq = try XCTUnwrap(text["text_model.encoder.layers.1.self_attn.q_proj.weight"]?.float32)
        XCTAssertTrue(tv.storage === tq.storage)
        XCTAssertEqual(tv.offset - tq.offset, 2 * 32 * 32)
    }

    func testShapesThatDoNotFitAreOneLineErrorsNamingFileAndKey() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.model, threads: 1)
        let base = try render(pipeline, [])
        _ = try render(pipeline, [selection("kohya")])
        let merges = pipeline.loraMerger.statistics.merges
        XCTAssertThrowsError(try render(pipeline, [selection("bad-shape")])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("bad-shape.safetensors"), text)
            XCTAssertTrue(text.contains("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight"), text)
            XCTAssertTrue(text.contains("[4, 24]") && text.contains("32"), text)
            XCTAssertFalse(text.contains("\n"))
        }
        XCTAssertThrowsError(try render(pipeline, [selection("unknown-key")])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("unknown-key.safetensors") && text.contains("attn3_to_q.lora_down.weight"), text)
        }
        // The failed sets changed nothing: the kohya set is still in place.
        XCTAssertEqual(pipeline.loraMerger.statistics.merges, merges)
        XCTAssertEqual(pipeline.loraMerger.applied.map(\.file), [Self.lora("kohya")])
        XCTAssertEqual(try render(pipeline, []).pixels, base.pixels)
    }

    func testPickleFilesAreRefusedUnread() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.model, threads: 1)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lora-ckpt-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let ckpt = dir.appendingPathComponent("x.ckpt")
        try Data("not read".utf8).write(to: ckpt)
        XCTAssertThrowsError(try render(pipeline, [LoRASelection(name: "x", file: ckpt, weight: 1)])) { error in
            XCTAssertEqual(error as? LoRAError, .notSafeTensors(file: ckpt.path))
        }
    }

    func testHashesAreAutomatic1111s() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.model, threads: 1)
        // sha256 of the bytes after the header (python: hashlib over f.read() after seek(8 + n)).
        let hash = try XCTUnwrap(pipeline.loraHash(selection("kohya")))
        XCTAssertEqual(hash.count, 12)
        XCTAssertEqual(hash, LoRAReferenceTests.expectedKohyaHash)
        XCTAssertEqual(pipeline.modelHash, LoRAReferenceTests.expectedModelHash)
        var empty = SHA256()
        XCTAssertEqual(empty.hexDigest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var abc = SHA256()
        abc.update(Array("abc".utf8))
        XCTAssertEqual(abc.hexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var long = SHA256()
        long.update(Array(repeating: 0x61, count: 1_000_000))
        XCTAssertEqual(long.hexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

extension LoRAReferenceTests {
    /// `hashlib.sha256(data[8 + header_length:]).hexdigest()[:12]` of lora/kohya.safetensors.
    static let expectedKohyaHash = "bbf5d3bec8a8"
    /// `hashlib.sha256(open(unet/diffusion_pytorch_model.safetensors).read()).hexdigest()[:10]`.
    static let expectedModelHash = "b3162c4ec6"
}
