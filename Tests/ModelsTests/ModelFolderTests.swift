import Foundation
import Kernels
import XCTest
@testable import Models

/// Loading whole diffusers folders, and the typed errors for configs and weights that do not fit.
final class ModelFolderTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("folder-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A copy of a fixture model folder that the test may edit.
    private func copyOfFixture(_ model: String) throws -> URL {
        let dst = dir.appendingPathComponent(model)
        try FileManager.default.copyItem(at: FixturePaths.url(model), to: dst)
        return dst
    }

    /// Rewrites one key of a component's config.json.
    private func edit(_ folder: URL, _ component: String, _ key: String, _ value: Any) throws {
        let url = folder.appendingPathComponent("\(component)/config.json")
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        json[key] = value
        try JSONSerialization.data(withJSONObject: json).write(to: url)
    }

    /// Writes F32 tensors as a safetensors file.
    private func writeSafeTensors(_ tensors: [(String, [Int], [Float])], to url: URL, halfPrecision: Bool = false) throws {
        var header: [String: Any] = [:]
        var data = Data()
        for (name, shape, values) in tensors {
            let begin = data.count
            for v in values {
                if halfPrecision {
                    withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { data.append(contentsOf: $0) }
                } else {
                    withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) }
                }
            }
            header[name] = ["dtype": halfPrecision ? "F16" : "F32", "shape": shape, "data_offsets": [begin, data.count]]
        }
        let h = try JSONSerialization.data(withJSONObject: header)
        var out = Data()
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(h)
        out.append(data)
        try out.write(to: url)
    }

    func testLoadsBothTinyFolders() throws {
        let sd1 = try StableDiffusionModel(directory: FixturePaths.url("tiny-sd1"), pool: .shared)
        XCTAssertEqual(sd1.index.components["scheduler"], "PNDMScheduler")
        XCTAssertEqual(sd1.unet.config.numAttentionHeads, [4, 4])
        XCTAssertFalse(sd1.unet.config.useLinearProjection)
        XCTAssertEqual(sd1.textEncoder.config.hiddenAct, .quickGELU)
        XCTAssertEqual(sd1.latentSide(forImageSide: 16), 8)
        XCTAssertNil(sd1.latentSide(forImageSide: 15))
        let sd2 = try StableDiffusionModel(directory: FixturePaths.url("tiny-sd2"), pool: .shared)
        XCTAssertEqual(sd2.unet.config.numAttentionHeads, [2, 4])
        XCTAssertTrue(sd2.unet.config.useLinearProjection)
        XCTAssertEqual(sd2.textEncoder.config.hiddenAct, .gelu)
        XCTAssertEqual(sd2.vae.config.scalingFactor, 0.13025)
        XCTAssertEqual(sd2.tokenizer.padTokenID, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: sd2.schedulerConfigURL.path))
    }

    func testBuiltInConfigsDecode() {
        XCTAssertEqual(UNetConfig.sd15.numAttentionHeads, [8, 8, 8, 8])
        XCTAssertEqual(UNetConfig.sd15.crossAttentionDim, 768)
        XCTAssertEqual(UNetConfig.sd21.numAttentionHeads, [5, 10, 20, 20])
        XCTAssertEqual(UNetConfig.sd15.timeEmbedding.dimension, 1280)
        XCTAssertEqual(VAEConfig.sd.downscaleFactor, 8)
        XCTAssertEqual(CLIPTextConfig.sd21.numHiddenLayers, 23)
    }

    func testWrongShapeNamesTheTensor() throws {
        let folder = try copyOfFixture("tiny-sd1")
        try edit(folder, "unet", "cross_attention_dim", 40)
        XCTAssertThrowsError(try UNet(directory: folder.appendingPathComponent("unet"), pool: .shared)) { e in
            guard case let .wrongShape(_, tensor, expected, found)? = e as? WeightError else { return XCTFail("\(e)") }
            XCTAssertEqual(tensor, "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight")
            XCTAssertEqual(expected, [16, 40])
            XCTAssertEqual(found, [16, 32])
        }
    }

    func testMissingTensorsAreListed() throws {
        let folder = try copyOfFixture("tiny-sd2")
        try edit(folder, "unet", "transformer_layers_per_block", 2)
        XCTAssertThrowsError(try UNet(directory: folder.appendingPathComponent("unet"), pool: .shared)) { e in
            guard case let .missing(_, tensors)? = e as? WeightError else { return XCTFail("\(e)") }
            XCTAssertTrue(tensors.contains("down_blocks.0.attentions.0.transformer_blocks.1.attn1.to_q.weight"), "\(tensors.prefix(5))")
            XCTAssertTrue(tensors.contains("mid_block.attentions.0.transformer_blocks.1.ff.net.2.bias"))
            XCTAssertFalse(tensors.contains { $0.contains("transformer_blocks.0") })
        }
    }

    func testUnexpectedTensorsAreReported() throws {
        let folder = try copyOfFixture("tiny-sd1")
        let vaeDir = folder.appendingPathComponent("vae")
        let weights = vaeDir.appendingPathComponent("diffusion_pytorch_model.safetensors")
        let original = try SafeTensorsFile(path: weights.path)
        var tensors = try original.tensorNames.map { ($0, original.tensors[$0]?.shape ?? [], try original.floats($0)) }
        tensors.append(("decoder.extra_block.weight", [2], [1, 2]))
        try writeSafeTensors(tensors, to: weights)
        XCTAssertThrowsError(try VAE(directory: vaeDir, pool: .shared)) { e in
            XCTAssertEqual(e as? WeightError, .unexpected(component: vaeDir.path, tensors: ["decoder.extra_block.weight"]))
        }
    }

    func testOldVAEAttentionNamesAndHalfPrecisionLoad() throws {
        // Older diffusers checkpoints name the VAE attention query/key/value/proj_attn and may
        // be stored in fp16; both must give the same decoder (up to fp16 rounding).
        let folder = try copyOfFixture("tiny-sd1")
        let vaeDir = folder.appendingPathComponent("vae")
        let weights = vaeDir.appendingPathComponent("diffusion_pytorch_model.safetensors")
        let original = try SafeTensorsFile(path: weights.path)
        let renames = [".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."]
        var renamed = 0
        let tensors = try original.tensorNames.map { name -> (String, [Int], [Float]) in
            var new = name
            for (a, b) in renames where name.contains("attentions.0") && name.contains(a) {
                new = name.replacingOccurrences(of: a, with: b)
                renamed += 1
            }
            return (new, original.tensors[name]?.shape ?? [], try original.floats(name))
        }
        XCTAssertEqual(renamed, 16)
        try writeSafeTensors(tensors, to: weights, halfPrecision: true)
        XCTAssertEqual(try SafeTensorsFile(path: weights.path).tensors["decoder.mid_block.attentions.0.query.weight"]?.dtype, .f16)
        let vae = try VAE(directory: vaeDir, pool: .shared)
        let ref = try Reference("tiny-sd1")
        let expected = try ref.tensor("vae.decode_out")
        let image = Tensor(zeros: expected.shape)
        vae.decode(try ref.tensor("vae.decode_in"), output: image)
        assertClose(image, expected, "fp16 / old names decode", tolerance: 1e-2)
    }

    func testTextEncoderKeysWithoutTextModelPrefixLoad() throws {
        // transformers 5 saves CLIPTextModel without the `text_model.` prefix that the real
        // SD checkpoints carry; both must load to the same encoder.
        let folder = try copyOfFixture("tiny-sd1")
        let textDir = folder.appendingPathComponent("text_encoder")
        let weights = textDir.appendingPathComponent("model.safetensors")
        let original = try SafeTensorsFile(path: weights.path)
        let tensors = try original.tensorNames.map { name -> (String, [Int], [Float]) in
            let stripped = name.hasPrefix("text_model.") ? String(name.dropFirst("text_model.".count)) : name
            return (stripped, original.tensors[name]?.shape ?? [], try original.floats(name))
        }
        XCTAssertFalse(tensors.contains { $0.0.hasPrefix("text_model.") })
        try writeSafeTensors(tensors, to: weights)
        let encoder = try CLIPTextEncoder(directory: textDir, pool: .shared)
        let ref = try Reference("tiny-sd1")
        let expected = try ref.tensor("text.last_hidden_state")
        let idsTensor = try ref.tensor("text.input_ids")
        let n = idsTensor.shape[0], l = idsTensor.shape[1]
        let flat = idsTensor.toArray().map { Int($0) }
        let out = Tensor(zeros: expected.shape)
        try encoder.encode((0..<n).map { Array(flat[($0 * l)..<(($0 + 1) * l)]) }, output: out)
        assertClose(out, expected, "unprefixed text encoder")
    }

    func testNoWeightsFile() throws {
        let folder = try copyOfFixture("tiny-sd1")
        let vaeDir = folder.appendingPathComponent("vae")
        try FileManager.default.removeItem(at: vaeDir.appendingPathComponent("diffusion_pytorch_model.safetensors"))
        XCTAssertThrowsError(try VAE(directory: vaeDir, pool: .shared)) { e in
            XCTAssertEqual(e as? WeightError, .noWeightFile(directory: vaeDir.path))
        }
    }

    func testConfigErrorsNameFileAndField() throws {
        let folder = try copyOfFixture("tiny-sd1")
        let configURL = folder.appendingPathComponent("unet/config.json")
        try edit(folder, "unet", "attention_head_dim", [4, 4, 4])
        XCTAssertThrowsError(try UNetConfig(contentsOf: configURL)) { e in
            guard case let .invalidValue(file, field, _)? = e as? ModelConfigError else { return XCTFail("\(e)") }
            XCTAssertEqual(file, configURL.path)
            XCTAssertEqual(field, "attention_head_dim")
        }
        try edit(folder, "unet", "attention_head_dim", 5)
        XCTAssertThrowsError(try UNetConfig(contentsOf: configURL)) { e in
            guard case .invalidValue(_, "attention_head_dim", _)? = e as? ModelConfigError else { return XCTFail("\(e)") }
        }
        try edit(folder, "unet", "attention_head_dim", 4)
        try edit(folder, "unet", "block_out_channels", "wide")
        XCTAssertThrowsError(try UNetConfig(contentsOf: configURL)) { e in
            XCTAssertEqual(e as? ModelConfigError, .wrongType(file: configURL.path, field: "block_out_channels", expected: "a list of integers"))
        }
        try edit(folder, "unet", "block_out_channels", [16, 24])
        try edit(folder, "unet", "class_embed_type", "timestep")
        XCTAssertThrowsError(try UNetConfig(contentsOf: configURL)) { e in
            XCTAssertEqual(e as? ModelConfigError, .unsupported(file: configURL.path, field: "class_embed_type", value: "timestep"))
        }
        try "{ not json".write(to: folder.appendingPathComponent("vae/config.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try VAEConfig(contentsOf: folder.appendingPathComponent("vae/config.json"))) { e in
            guard case .invalidJSON? = e as? ModelConfigError else { return XCTFail("\(e)") }
        }
    }

    func testFolderLevelErrors() throws {
        XCTAssertThrowsError(try StableDiffusionModel(directory: dir, pool: .shared)) { e in
            XCTAssertEqual(e as? ModelFolderError, .notAFolder(path: dir.path))
        }
        let folder = try copyOfFixture("tiny-sd2")
        try edit(folder, "text_encoder", "hidden_size", 32)
        try edit(folder, "text_encoder", "num_attention_heads", 4)
        // Shapes no longer match the checkpoint: reported by tensor name before the compatibility check.
        XCTAssertThrowsError(try StableDiffusionModel(directory: folder, pool: .shared)) { e in
            guard case .wrongShape? = e as? WeightError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try StableDiffusionModel.checkCompatible(
            folder: "f", tokenizer: try CLIPTokenizer(directory: folder.appendingPathComponent("tokenizer")),
            text: CLIPTextConfig.sd15, unet: UNetConfig.sd21, vae: VAEConfig.sd)) { e in
            guard case .incompatible? = e as? ModelFolderError else { return XCTFail("\(e)") }
        }
    }

    func testRandomWeightsBuildConfigShapes() throws {
        let unet = try UNet.randomWeights(config: UNetConfig(contentsOf: FixturePaths.url("tiny-sd2/unet/config.json")), seed: 7, pool: .shared)
        let out = Tensor(zeros: [1, 4, 6, 8])
        let sample = Tensor(shape: [1, 4, 6, 8], values: (0..<192).map { sin(Float($0)) })
        let context = Tensor(shape: [1, 77, 48], values: (0..<(77 * 48)).map { cos(Float($0) * 0.1) })
        unet(sample: sample, timestep: 10, context: context, output: out)
        XCTAssertTrue(out.toArray().allSatisfy { $0.isFinite })
        XCTAssertGreaterThan(out.toArray().map(abs).max() ?? 0, 0)
        // Same seed, same weights.
        let unet2 = try UNet.randomWeights(config: unet.config, seed: 7, pool: .shared)
        let out2 = Tensor(zeros: [1, 4, 6, 8])
        unet2(sample: sample, timestep: 10, context: context, output: out2)
        XCTAssertEqual(out.toArray(), out2.toArray())
    }

    func testOddLatentSizeRunsLikeDiffusersUpsampleSize() throws {
        // 5×7 latents: down 5→3, 7→4; upsampling must return to 5×7 (diffusers' upsample_size).
        let unet = try UNet(directory: FixturePaths.url("tiny-sd1/unet"), pool: .shared)
        let sample = Tensor(shape: [1, 4, 5, 7], values: (0..<140).map { sin(Float($0)) })
        let context = Tensor(zeros: [1, 77, 32])
        let out = Tensor(zeros: [1, 4, 5, 7])
        unet(sample: sample, timestep: 3, context: context, output: out)
        XCTAssertTrue(out.toArray().allSatisfy { $0.isFinite })
    }
}
