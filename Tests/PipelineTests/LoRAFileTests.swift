import Foundation
import XCTest
@testable import Models
@testable import Pipeline

/// LoRA layouts and refusals beyond the two diffusers-checked fixtures, on small files
/// written here: peft's `base_model.model.` prefixes, a PEFT file without metadata (alpha = r),
/// the exact merge arithmetic, and the variants that are refused with their key.
final class LoRAFileTests: XCTestCase {
    static let model = LoRAReferenceTests.model

    /// A safetensors file of F32 tensors (name → (shape, values)) with optional metadata.
    func write(_ tensors: [(String, [Int], [Float])], metadata: [String: String] = [:]) throws -> URL {
        var header: [String: Any] = [:]
        var data = Data()
        for (name, shape, values) in tensors {
            let begin = data.count
            values.withUnsafeBufferPointer { data.append(Data(buffer: $0)) }
            header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [begin, data.count]]
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        let json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        var file = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { file.append(contentsOf: $0) }
        file.append(json)
        file.append(data)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lora-\(UUID().uuidString.prefix(8)).safetensors")
        try file.write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func ramp(_ count: Int, _ scale: Float) -> [Float] { (0..<count).map { Float($0 % 7 - 3) * scale } }

    func testPeftPrefixesAndTheMergeArithmetic() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.model, threads: 1)
        let unetModule = "down_blocks.0.attentions.0.proj_in", textModule = "encoder.layers.0.mlp.fc1"
        let a1 = ramp(2 * 16, 0.01), b1 = ramp(16 * 2, 0.02), a2 = ramp(2 * 32, 0.03), b2 = ramp(37 * 2, 0.01)
        let url = try write([
            ("unet.base_model.model.\(unetModule).lora_A.weight", [2, 16, 1, 1], a1),
            ("unet.base_model.model.\(unetModule).lora_B.weight", [16, 2, 1, 1], b1),
            ("base_model.model.\(textModule).lora_A.weight", [2, 32], a2),
            ("base_model.model.\(textModule).lora_B.weight", [37, 2], b2),
        ])
        let unetWeight = try XCTUnwrap(pipeline.unet.parameters[unetModule + ".weight"])
        let textWeight = try XCTUnwrap(pipeline.textEncoder.parameters["text_model.\(textModule).weight"])
        let unet0 = unetWeight.toArray(), text0 = textWeight.toArray()
        try pipeline.loraMerger.apply([LoRAApplication(file: url, weight: 0.5)])
        // No metadata: alpha = r, scale 1; W = W0 + 0.5 · B·A.
        func expected(_ w0: [Float], _ b: [Float], _ a: [Float], out: Int, rank: Int, inputs: Int) -> [Float] {
            (0..<(out * inputs)).map { i in
                let (o, c) = (i / inputs, i % inputs)
                var sum: Float = 0
                for r in 0..<rank { sum += b[o * rank + r] * a[r * inputs + c] }
                return w0[i] + 0.5 * sum
            }
        }
        for (got, want) in zip(unetWeight.toArray(), expected(unet0, b1, a1, out: 16, rank: 2, inputs: 16)) {
            XCTAssertEqual(got, want, accuracy: 1e-6)
        }
        for (got, want) in zip(textWeight.toArray(), expected(text0, b2, a2, out: 37, rank: 2, inputs: 32)) {
            XCTAssertEqual(got, want, accuracy: 1e-6)
        }
        try pipeline.loraMerger.apply([])
        XCTAssertEqual(unetWeight.toArray().map(\.bitPattern), unet0.map(\.bitPattern))
        XCTAssertEqual(textWeight.toArray().map(\.bitPattern), text0.map(\.bitPattern))
    }

    func testRefusedVariantsNameTheirKey() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.model, threads: 1)
        let k = "lora_unet_down_blocks_0_attentions_0_proj_in"
        let cases: [([(String, [Int], [Float])], String)] = [
            ([("\(k).hada_w1_a", [2, 16], ramp(32, 1))], "LoHa"),
            ([("\(k).lora_down.weight", [2, 16], ramp(32, 1)), ("\(k).lora_up.weight", [16, 2], ramp(32, 1)),
              ("\(k).dora_scale", [16, 1], ramp(16, 1))], "DoRA"),
            ([("\(k).lora_down.weight", [2, 16], ramp(32, 1))], "has no partner '\(k).lora_up.weight'"),
            ([("unet.\(k).lora_magnitude_vector", [16], ramp(16, 1))], "DoRA"),
            ([("vae.decoder.conv_in.lora_A.weight", [2, 4], ramp(8, 1))], "neither kohya"),
            ([("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", [2, 32], ramp(64, 1)),
              ("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", [37, 2], ramp(74, 1))], "which this model does not have"),
            ([("\(k).lora_down.weight", [2, 16], ramp(32, 1)), ("\(k).lora_up.weight", [16, 3], ramp(48, 1))], "has shape [16, 3]"),
        ]
        for (tensors, expected) in cases {
            let url = try write(tensors)
            XCTAssertThrowsError(try pipeline.loraMerger.apply([LoRAApplication(file: url, weight: 1)]), expected) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(expected) && text.contains(url.path), text)
                XCTAssertTrue(text.contains(tensors[0].0) || text.contains(tensors.last?.0 ?? ""), text)
            }
        }
        XCTAssertEqual(pipeline.loraMerger.statistics.merges, 0)
    }

    /// peft's pattern matching with metadata: `rank_pattern` / `alpha_pattern` keys are regexes
    /// matched against the end of the module name, first match in sorted order.
    func testPeftMetadataPatterns() throws {
        let meta = #"{"unet.r": 4, "unet.lora_alpha": 8, "unet.rank_pattern": {"proj_in": 2}, "unet.alpha_pattern": {"attentions.0.proj_in": 1}}"#
        let m = "down_blocks.0.attentions.0.proj_in"
        let url = try write([("unet.\(m).lora_A.weight", [2, 16], ramp(32, 1)), ("unet.\(m).lora_B.weight", [16, 2], ramp(32, 1)),
                             ("unet.down_blocks.0.attentions.1.proj_in.lora_A.weight", [2, 16], ramp(32, 1)),
                             ("unet.down_blocks.0.attentions.1.proj_in.lora_B.weight", [16, 2], ramp(32, 1))],
                            metadata: ["lora_adapter_metadata": meta])
        let file = try LoRAFile(url: url)
        let scales = Dictionary(uniqueKeysWithValues: file.pairs.map { ($0.downKey, $0.scale) })
        XCTAssertEqual(scales["unet.\(m).lora_A.weight"], 0.5, "alpha 1 (alpha_pattern) / r 2 (rank_pattern)")
        XCTAssertEqual(scales["unet.down_blocks.0.attentions.1.proj_in.lora_A.weight"], 4, "alpha 8 / r 2")
    }
}
