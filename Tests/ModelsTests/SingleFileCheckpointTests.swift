import Foundation
import Kernels
import XCTest
@testable import Models

/// Single-file (original LDM key names) checkpoints: family detection, config inference,
/// the diffusers ↔ LDM key map, loading, and every refusal. Fixtures:
/// Tests/Fixtures/single-file (tools/fixtures/single_file_refs.py).
final class SingleFileCheckpointTests: XCTestCase {
    static let sd1 = FixturePaths.url("single-file/tiny-sd1.safetensors")
    static let sd2 = FixturePaths.url("single-file/tiny-sd2.safetensors")
    static let sd1Tokenizer = FixturePaths.url("tiny-sd1/tokenizer")
    static let sd2Tokenizer = FixturePaths.url("tiny-sd2/tokenizer")

    private var temp: TemporaryFolder!
    override func setUpWithError() throws { temp = try TemporaryFolder() }
    override func tearDown() { temp.cleanUp() }

    /// The diffusers config the fixture models were built with (index.json), decoded by the
    /// folder decoder; `sample_size` (informative, not in a single file) left out.
    private func recordedConfig(_ model: String, _ component: String) throws -> ConfigJSON {
        let index = try FixturePaths.json("single-file/index.json")
        let models = try XCTUnwrap(index["models"] as? [String: Any])
        let entry = try XCTUnwrap(models[model] as? [String: Any])
        var object = try XCTUnwrap(entry[component] as? [String: Any])
        object["sample_size"] = nil
        return ConfigJSON(file: "index.json \(model) \(component)", object: object)
    }

    /// Runs `body` and returns its error's description, failing when it does not throw.
    private func errorText(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            try body()
            XCTFail("expected an error", file: file, line: line)
            return ""
        } catch {
            return "\(error)"
        }
    }

    /// A copy of fixture `source` with `edit` applied to its entries.
    private func edited(_ source: URL, _ name: String, _ edit: (inout [TensorEntry]) throws -> Void) throws -> URL {
        var entries = try readEntries(source)
        try edit(&entries)
        let url = temp.file(name)
        try writeSafeTensors(entries, to: url)
        return url
    }

    // MARK: - Inference on the tiny fixtures

    func testTinySD1IsDetectedAndItsConfigsInferred() throws {
        let info = try SingleFileCheckpoint(url: Self.sd1).info
        XCTAssertEqual(info.family, .sd1)
        XCTAssertFalse(info.isInpainting)
        XCTAssertEqual(info.prediction, .epsilon)
        let unet = info.unet
        XCTAssertEqual(unet.blockOutChannels, [32, 64])
        XCTAssertEqual(unet.layersPerBlock, [1, 1])
        XCTAssertEqual(unet.downBlockTypes, [.crossAttention, .plain])
        XCTAssertEqual(unet.upBlockTypes, [.plain, .crossAttention])
        XCTAssertEqual(unet.numAttentionHeads, [8, 8])
        XCTAssertEqual(unet.transformerLayersPerBlock, [[1], [1]])
        XCTAssertEqual(unet.crossAttentionDim, 64)
        XCTAssertFalse(unet.useLinearProjection)
        XCTAssertEqual(unet.inChannels, 4)
        XCTAssertEqual(unet.outChannels, 4)
        XCTAssertEqual(unet.normNumGroups, 32)
        XCTAssertEqual(unet.timeEmbedding.dimension, 128)
        XCTAssertEqual(unet, try UNetConfig(json: recordedConfig("tiny-sd1", "unet")))
        XCTAssertEqual(info.vae.blockOutChannels, [32, 64])
        XCTAssertEqual(info.vae.layersPerBlock, 1)
        XCTAssertEqual(info.vae.latentChannels, 4)
        XCTAssertEqual(info.vae.scalingFactor, 0.18215)
        XCTAssertEqual(info.vae, try VAEConfig(json: recordedConfig("tiny-sd1", "vae")))
        let text = info.textEncoder
        XCTAssertEqual([text.hiddenSize, text.numHiddenLayers, text.numAttentionHeads, text.intermediateSize, text.vocabSize,
                        text.maxPositionEmbeddings], [64, 2, 1, 128, 1000, 77])
        XCTAssertEqual(text.hiddenAct, .quickGELU)
        XCTAssertEqual(text, try CLIPTextConfig(json: recordedConfig("tiny-sd1", "text_encoder")))
    }

    func testTinySD2IsDetectedAndItsConfigsInferred() throws {
        let info = try SingleFileCheckpoint(url: Self.sd2).info
        XCTAssertEqual(info.family, .sd2)
        XCTAssertEqual(info.prediction, .vPrediction)
        XCTAssertEqual(info.unet.blockOutChannels, [64, 128])
        XCTAssertEqual(info.unet.numAttentionHeads, [1, 2], "SD 2.x heads are 64 wide")
        XCTAssertTrue(info.unet.useLinearProjection)
        XCTAssertEqual(info.unet.crossAttentionDim, 64)
        XCTAssertEqual(info.unet, try UNetConfig(json: recordedConfig("tiny-sd2", "unet")))
        XCTAssertEqual(info.vae, try VAEConfig(json: recordedConfig("tiny-sd2", "vae")))
        // The file has 3 OpenCLIP resblocks; SD 2.x uses the penultimate layer's output.
        XCTAssertEqual(info.textEncoder.numHiddenLayers, 2)
        XCTAssertEqual(info.textEncoder.hiddenAct, .gelu)
        XCTAssertEqual(info.textEncoder, try CLIPTextConfig(json: recordedConfig("tiny-sd2", "text_encoder")))
        XCTAssertEqual(try SingleFileCheckpoint(url: Self.sd2, prediction: .epsilon).info.prediction, .epsilon)
        XCTAssertEqual(try SingleFileCheckpoint(url: Self.sd1, prediction: .vPrediction).info.prediction, .vPrediction)
    }

    func testSchedulerConfigsAreTheFamilyStandardOnes() throws {
        let index = try FixturePaths.json("single-file/index.json")
        let models = try XCTUnwrap(index["models"] as? [String: Any])
        for (model, url) in [("tiny-sd1", Self.sd1), ("tiny-sd2", Self.sd2)] {
            let entry = try XCTUnwrap(models[model] as? [String: Any])
            let standard = try XCTUnwrap(entry["scheduler"] as? [String: Any])
            let info = try SingleFileCheckpoint(url: url).info
            let ours = try XCTUnwrap(try JSONSerialization.jsonObject(with: info.schedulerConfigJSON) as? [String: Any])
            for (key, value) in standard where key != "_diffusers_version" && !(value is NSNull) {
                XCTAssertEqual("\(ours[key] ?? "absent")", "\(value)", "\(model) \(key)")
            }
            XCTAssertEqual(ours["prediction_type"] as? String, model == "tiny-sd1" ? "epsilon" : "v_prediction")
        }
        let overridden = try SingleFileCheckpoint(url: Self.sd2, prediction: .epsilon).info
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: overridden.schedulerConfigJSON) as? [String: Any])
        XCTAssertEqual(json["prediction_type"] as? String, "epsilon")
        XCTAssertEqual(json["_class_name"] as? String, "DDIMScheduler")
        XCTAssertEqual(CheckpointPrediction(configValue: "v"), .vPrediction)
        XCTAssertEqual(CheckpointPrediction(configValue: "epsilon"), .epsilon)
        XCTAssertNil(CheckpointPrediction(configValue: "sample"))
    }

    // MARK: - Full-size layouts (ldm-layouts.json: real SD 1.5 / 2.1 keys and shapes)

    private func layout(_ name: String) throws -> (tensors: [String: SafeTensorInfo], diffusers: [String: [[Any]]]) {
        let root = try FixturePaths.json("single-file/ldm-layouts.json")
        let entry = try XCTUnwrap(root[name] as? [String: Any])
        let shapes = try XCTUnwrap(entry["tensors"] as? [String: [Int]])
        var tensors: [String: SafeTensorInfo] = [:]
        for (key, shape) in shapes {
            tensors[key] = SafeTensorInfo(name: key, dtype: .f16, shape: shape, dataRange: 0..<0, elementCount: shape.reduce(1, *))
        }
        return (tensors, try XCTUnwrap(entry["diffusers"] as? [String: [[Any]]]))
    }

    func testFullSizeSD15AndSD21LayoutsInferTheirDiffusersConfigs() throws {
        let sd15 = try SingleFileCheckpoint.infer(tensors: layout("sd15").tensors, path: "sd15", prediction: nil)
        XCTAssertEqual(sd15.info.family, .sd1)
        var unet15 = UNetConfig.sd15
        unet15.sampleSize = nil
        XCTAssertEqual(sd15.info.unet, unet15)
        XCTAssertEqual(sd15.info.vae, VAEConfig.sd)
        var text15 = CLIPTextConfig.sd15
        text15.projectionDim = nil
        XCTAssertEqual(sd15.info.textEncoder, text15)
        XCTAssertNil(sd15.droppedPrefix)

        let sd21 = try SingleFileCheckpoint.infer(tensors: layout("sd21").tensors, path: "sd21", prediction: nil)
        XCTAssertEqual(sd21.info.family, .sd2)
        XCTAssertEqual(sd21.info.prediction, .vPrediction)
        var unet21 = UNetConfig.sd21
        unet21.sampleSize = nil
        XCTAssertEqual(sd21.info.unet, unet21)
        XCTAssertEqual(sd21.info.unet.numAttentionHeads, [5, 10, 20, 20])
        XCTAssertEqual(sd21.info.vae, VAEConfig.sd)
        var text21 = CLIPTextConfig.sd21
        text21.projectionDim = nil
        XCTAssertEqual(sd21.info.textEncoder, text21)
        XCTAssertEqual(sd21.droppedPrefix, "cond_stage_model.model.transformer.resblocks.23.")

        // SD 2.x inpainting (9 input channels) predicts epsilon, like stable-diffusion-2-inpainting.
        var inpainting = try layout("sd21").tensors
        inpainting["model.diffusion_model.input_blocks.0.0.weight"]?.shape = [320, 9, 3, 3]
        let sd2Inpainting = try SingleFileCheckpoint.infer(tensors: inpainting, path: "sd21-inpainting", prediction: nil).info
        XCTAssertTrue(sd2Inpainting.isInpainting)
        XCTAssertEqual(sd2Inpainting.unet.inChannels, 9)
        XCTAssertEqual(sd2Inpainting.prediction, .epsilon)
    }

    /// Every diffusers tensor of full-size SD 1.5 and SD 2.1 maps to the LDM key (and q/k/v
    /// row block) diffusers' own conversion takes it from; LDM keys diffusers ignores are
    /// exactly the ignorable ones.
    func testKeyMapsAgreeWithDiffusersConversionAtFullSize() throws {
        for name in ["sd15", "sd21"] {
            let (tensors, diffusers) = try layout(name)
            let info = try SingleFileCheckpoint.infer(tensors: tensors, path: name, prediction: nil)
            let c = info.info.unet
            let unetMap = LDMUNetKeyMap(layers: c.layersPerBlock, upAttention: c.upBlockTypes.map { $0 == .crossAttention })
            let vaeMap = LDMVAEKeyMap(prefix: info.vaePrefix, levels: info.info.vae.blockOutChannels.count)
            let textMap: (String) -> LDMTensorRef? = name == "sd15" ? LDMCLIPKeyMap().original : LDMOpenCLIPKeyMap().original
            var checked = 0
            for (key, entries) in diffusers {
                for entry in entries {
                    let component = try XCTUnwrap(entry[0] as? String)
                    let diffusersName = try XCTUnwrap(entry[1] as? String)
                    let part = entry[2] as? Int
                    let map = component == "unet" ? unetMap.original : component == "vae" ? vaeMap.original : textMap
                    let ref = map(diffusersName)
                    XCTAssertEqual(ref?.key, key, "\(name) \(diffusersName)")
                    XCTAssertEqual(ref?.part, part, "\(name) \(diffusersName)")
                    if part != nil { XCTAssertEqual(ref?.parts, 3) }
                    checked += 1
                }
            }
            XCTAssertEqual(checked, name == "sd15" ? 1130 : 1306)
            let checkpoint = try SingleFileCheckpoint.infer(tensors: tensors, path: name, prediction: nil)
            let unused = tensors.keys.filter { diffusers[$0] == nil }.sorted()
            XCTAssertEqual(unused.count, name == "sd15" ? 0 : 14, "\(unused)")
            for key in unused {
                XCTAssertTrue(key.hasPrefix(checkpoint.droppedPrefix ?? "-") || key.hasSuffix("text_projection") || key.hasSuffix("logit_scale"), key)
            }
        }
    }

    func testKeyMapSpotChecksOfSD15Names() {
        // Well-known pairs of SD 1.5's conversion (layers 2, attention in up blocks 1–3).
        let unet = LDMUNetKeyMap(layers: [2, 2, 2, 2], upAttention: [false, true, true, true])
        let p = LDMUNetKeyMap.prefix
        let pairs = [
            ("conv_in.weight", "input_blocks.0.0.weight"),
            ("time_embedding.linear_2.bias", "time_embed.2.bias"),
            ("down_blocks.0.resnets.1.time_emb_proj.weight", "input_blocks.2.0.emb_layers.1.weight"),
            ("down_blocks.1.resnets.0.conv_shortcut.weight", "input_blocks.4.0.skip_connection.weight"),
            ("down_blocks.1.downsamplers.0.conv.weight", "input_blocks.6.0.op.weight"),
            ("down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight", "input_blocks.8.1.transformer_blocks.0.attn2.to_k.weight"),
            ("down_blocks.3.resnets.1.norm1.weight", "input_blocks.11.0.in_layers.0.weight"),
            ("mid_block.resnets.1.conv2.weight", "middle_block.2.out_layers.3.weight"),
            ("mid_block.attentions.0.proj_in.weight", "middle_block.1.proj_in.weight"),
            ("up_blocks.0.upsamplers.0.conv.weight", "output_blocks.2.1.conv.weight"),
            ("up_blocks.1.upsamplers.0.conv.bias", "output_blocks.5.2.conv.bias"),
            ("up_blocks.3.attentions.2.proj_out.weight", "output_blocks.11.1.proj_out.weight"),
            ("up_blocks.3.resnets.2.norm2.bias", "output_blocks.11.0.out_layers.0.bias"),
            ("conv_norm_out.weight", "out.0.weight"),
            ("conv_out.bias", "out.2.bias"),
        ]
        for (name, original) in pairs { XCTAssertEqual(unet.original(name)?.key, p + original, name) }
        XCTAssertNil(unet.original("up_blocks.3.upsamplers.0.conv.weight"), "the last up block has no upsampler")
        XCTAssertNil(unet.original("down_blocks.0.resnets.2.norm1.weight"), "only 2 resnets per down block")
        XCTAssertNil(unet.original("down_blocks.99999999999999999999.resnets.0.norm1.weight"))

        let vae = LDMVAEKeyMap(prefix: "first_stage_model.", levels: 4)
        XCTAssertEqual(vae.original("decoder.up_blocks.0.resnets.2.conv1.weight")?.key, "first_stage_model.decoder.up.3.block.2.conv1.weight")
        XCTAssertEqual(vae.original("decoder.up_blocks.2.upsamplers.0.conv.weight")?.key, "first_stage_model.decoder.up.1.upsample.conv.weight")
        XCTAssertEqual(vae.original("encoder.down_blocks.1.resnets.0.conv_shortcut.bias")?.key, "first_stage_model.encoder.down.1.block.0.nin_shortcut.bias")
        XCTAssertEqual(vae.original("encoder.mid_block.attentions.0.to_out.0.weight")?.key, "first_stage_model.encoder.mid.attn_1.proj_out.weight")
        XCTAssertEqual(vae.original("decoder.mid_block.attentions.0.group_norm.bias")?.key, "first_stage_model.decoder.mid.attn_1.norm.bias")
        XCTAssertEqual(vae.original("decoder.conv_norm_out.weight")?.key, "first_stage_model.decoder.norm_out.weight")

        let open = LDMOpenCLIPKeyMap()
        XCTAssertEqual(open.original("text_model.encoder.layers.3.self_attn.k_proj.weight"),
                       LDMTensorRef(key: "cond_stage_model.model.transformer.resblocks.3.attn.in_proj_weight", part: 1, parts: 3))
        XCTAssertEqual(open.original("text_model.encoder.layers.0.mlp.fc2.bias")?.key, "cond_stage_model.model.transformer.resblocks.0.mlp.c_proj.bias")
        XCTAssertEqual(open.original("text_model.embeddings.position_embedding.weight")?.key, "cond_stage_model.model.positional_embedding")
    }

    // MARK: - Loading

    func testLoadedWeightsAreTheFilesTensorsIncludingFusedQKVSlices() throws {
        let model = try StableDiffusionModel(singleFile: Self.sd2, tokenizerDirectory: Self.sd2Tokenizer, pool: ThreadPool(threadCount: 1))
        let info = try XCTUnwrap(model.singleFile)
        XCTAssertEqual(info.family, .sd2)
        XCTAssertEqual(model.directory.path, Self.sd2.path)
        let file = try SafeTensorsFile(path: Self.sd2.path)
        // CLIPEncoderLayer stacks q, k, v: that is exactly OpenCLIP's in_proj_weight.
        let fused = try file.floats("cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight")
        let qkv = model.textEncoder.layers[1].qkv
        XCTAssertEqual(qkv.weight.shape, [192, 64])
        XCTAssertEqual(qkv.weight.toArray(), fused)
        let fusedBias = try file.floats("cond_stage_model.model.transformer.resblocks.1.attn.in_proj_bias")
        let bias = try XCTUnwrap(qkv.bias)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: bias.data, count: bias.count)), fusedBias)
        let convIn = try file.floats("model.diffusion_model.input_blocks.0.0.weight")
        let weights = model.unet.weights.convIn.weight
        XCTAssertEqual(weights.toArray(), convIn)
    }

    /// Files saved with older transformers lack `text_model.` in the CLIP keys.
    func testOlderCLIPKeyNamesGiveTheSameTextEncoder() throws {
        let old = try edited(Self.sd1, "old-clip.safetensors") { entries in
            for i in entries.indices {
                entries[i].name = entries[i].name.replacingOccurrences(of: "cond_stage_model.transformer.text_model.", with: "cond_stage_model.transformer.")
            }
        }
        let pool = ThreadPool(threadCount: 1)
        let a = try StableDiffusionModel(singleFile: Self.sd1, tokenizerDirectory: Self.sd1Tokenizer, pool: pool)
        let b = try StableDiffusionModel(singleFile: old, tokenizerDirectory: Self.sd1Tokenizer, pool: pool)
        XCTAssertEqual(b.singleFile?.family, .sd1)
        let ids = [a.tokenizer.encodeForModel("a photo of a cat")]
        let outA = Tensor(zeros: [1, 77, 64]), outB = Tensor(zeros: [1, 77, 64])
        try a.textEncoder.encode(ids, output: outA)
        try b.textEncoder.encode(ids, output: outB)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: outA.data, count: outA.count)), Array(UnsafeBufferPointer(start: outB.data, count: outB.count)))
        XCTAssertNotEqual(outA.data[5], 0)
    }

    func testInpaintingCheckpointLoadsWithNineInputChannels() throws {
        let url = try edited(Self.sd1, "inpainting.safetensors") { entries in
            let i = try XCTUnwrap(entries.firstIndex { $0.name == "model.diffusion_model.input_blocks.0.0.weight" })
            entries[i] = .half(entries[i].name, [32, 9, 3, 3], (0..<(32 * 9 * 9)).map { Float($0 % 7) / 8 })
        }
        let checkpoint = try SingleFileCheckpoint(url: url)
        XCTAssertTrue(checkpoint.info.isInpainting)
        XCTAssertEqual(checkpoint.info.unet.inChannels, 9)
        XCTAssertEqual(checkpoint.info.unet.outChannels, 4)
        let model = try StableDiffusionModel(checkpoint: checkpoint, tokenizerDirectory: Self.sd1Tokenizer, pool: ThreadPool(threadCount: 1))
        XCTAssertEqual(model.unet.config.inChannels, 9)
        XCTAssertEqual(model.index.pipelineClass, "StableDiffusionInpaintPipeline")
        XCTAssertEqual(model.unet.weights.convIn.weight.toArray()[9 * 9 + 1], Float((9 * 9 + 1) % 7) / 8)
    }

    // MARK: - Refusals and damaged files

    func testTruncatedFileNamesTheFileAndATensor() throws {
        let data = try Data(contentsOf: Self.sd1)
        let url = temp.file("truncated.safetensors")
        try data.prefix(data.count / 2).write(to: url)
        let text = errorText { _ = try SingleFileCheckpoint(url: url) }
        XCTAssertTrue(text.contains(url.path), text)
        XCTAssertTrue(text.contains("tensor '") && text.contains("outside the data region"), text)
        // Cut inside the header too.
        try data.prefix(100).write(to: url)
        let header = errorText { _ = try SingleFileCheckpoint(url: url) }
        XCTAssertTrue(header.contains(url.path) && header.contains("truncated"), header)
    }

    func testMissingUNetTensorIsNamedByBothNames() throws {
        let url = try edited(Self.sd1, "missing.safetensors") { entries in
            entries.removeAll { $0.name == "model.diffusion_model.input_blocks.1.0.in_layers.0.weight" }
        }
        let text = errorText { _ = try StableDiffusionModel(singleFile: url, tokenizerDirectory: Self.sd1Tokenizer, pool: .shared) }
        XCTAssertTrue(text.contains(url.path), text)
        XCTAssertTrue(text.contains("down_blocks.0.resnets.0.norm1.weight"), text)
        XCTAssertTrue(text.contains("model.diffusion_model.input_blocks.1.0.in_layers.0.weight"), text)
        XCTAssertTrue(text.contains("missing"), text)
    }

    func testLeftoverTensorIsAnErrorButKnownExtrasAreNot() throws {
        // The fixture itself carries betas, alphas_cumprod, model_ema.*, position_ids and
        // (SD 2) the dropped resblock, text_projection and logit_scale: loading it passes.
        XCTAssertNoThrow(try StableDiffusionModel(singleFile: Self.sd2, tokenizerDirectory: Self.sd2Tokenizer, pool: ThreadPool(threadCount: 1)))
        let url = try edited(Self.sd1, "extra.safetensors") { entries in
            entries.append(.zeros("model.diffusion_model.label_emb.0.0.weight", [128, 16]))
            entries.append(.zeros("first_stage_model.loss.logvar", []))
        }
        let text = errorText { _ = try StableDiffusionModel(singleFile: url, tokenizerDirectory: Self.sd1Tokenizer, pool: .shared) }
        XCTAssertTrue(text.contains(url.path) && text.contains("2 tensor(s)"), text)
        XCTAssertTrue(text.contains("model.diffusion_model.label_emb.0.0.weight") && text.contains("first_stage_model.loss.logvar"), text)
    }

    func testWrongShapeNamesTheOriginalAndDiffusersTensor() throws {
        let url = try edited(Self.sd2, "shape.safetensors") { entries in
            let i = try XCTUnwrap(entries.firstIndex { $0.name == "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight" })
            entries[i] = .zeros(entries[i].name, [128, 64])
        }
        let text = errorText { _ = try StableDiffusionModel(singleFile: url, tokenizerDirectory: Self.sd2Tokenizer, pool: .shared) }
        XCTAssertTrue(text.contains("cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"), text)
        XCTAssertTrue(text.contains("text_model.encoder.layers.0.self_attn.q_proj.weight"), text)
        XCTAssertTrue(text.contains("[128, 64]") && text.contains("[192, 64]"), text)
    }

    func testHostileShapesAndIndicesAreErrorsNotCrashes() throws {
        let rank = try edited(Self.sd1, "rank.safetensors") { entries in
            let i = try XCTUnwrap(entries.firstIndex { $0.name == "model.diffusion_model.input_blocks.0.0.weight" })
            entries[i] = .zeros(entries[i].name, [32, 4])
        }
        let text = errorText { _ = try SingleFileCheckpoint(url: rank) }
        XCTAssertTrue(text.contains("model.diffusion_model.input_blocks.0.0.weight") && text.contains("[32, 4]"), text)

        let far = try edited(Self.sd1, "far.safetensors") { entries in
            entries.append(.zeros("model.diffusion_model.input_blocks.999999.0.in_layers.0.weight", [2]))
        }
        let leftover = errorText { _ = try StableDiffusionModel(singleFile: far, tokenizerDirectory: Self.sd1Tokenizer, pool: .shared) }
        XCTAssertTrue(leftover.contains("input_blocks.999999"), leftover)

        let pix2pix = try edited(Self.sd1, "pix2pix.safetensors") { entries in
            let i = try XCTUnwrap(entries.firstIndex { $0.name == "model.diffusion_model.input_blocks.0.0.weight" })
            entries[i] = .zeros(entries[i].name, [32, 8, 3, 3])
        }
        let channels = errorText { _ = try SingleFileCheckpoint(url: pix2pix) }
        XCTAssertTrue(channels.contains("8 input channels"), channels)

        let noVAE = try edited(Self.sd1, "novae.safetensors") { entries in
            entries.removeAll { $0.name.hasPrefix("first_stage_model.") }
        }
        let vae = errorText { _ = try SingleFileCheckpoint(url: noVAE) }
        XCTAssertTrue(vae.contains("no VAE tensors"), vae)
    }

    func testPickleCheckpointIsRefusedWithTheConversionCommand() throws {
        let url = temp.file("my model.ckpt")
        try Data([0x80, 0x02, 0x7d, 0x71]).write(to: url)
        let text = errorText { _ = try SingleFileCheckpoint(url: url) }
        XCTAssertTrue(text.contains(url.path) && text.contains("runs code"), text)
        let expected = "python3 -c \"import torch, safetensors.torch as s; sd = torch.load('\(url.path)', map_location='cpu', " +
            "weights_only=True); sd = sd.get('state_dict', sd); s.save_file({k: v.contiguous() for k, v in sd.items() " +
            "if hasattr(v, 'contiguous')}, '\(temp.file("my model.safetensors").path)')\""
        XCTAssertTrue(text.contains(expected), text)
        for ext in ["pt", "pth", "bin", "CKPT"] {
            XCTAssertTrue(errorText { _ = try SingleFileCheckpoint(url: temp.file("m.\(ext)")) }.contains("pickle"), ext)
        }
        // A PyTorch zip archive renamed to .safetensors.
        let renamed = temp.file("renamed.safetensors")
        try Data([0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 0, 0, 0, 0, 0]).write(to: renamed)
        XCTAssertTrue(errorText { _ = try SingleFileCheckpoint(url: renamed) }.contains("pickle"))
        // Quotes and dollars in a path stay literal in the shell and in Python.
        let odd = SingleFileError.conversionCommand(for: "/m/it's $HOME \"x\".ckpt")
        XCTAssertTrue(odd.contains("torch.load('/m/it\\\\'s \\$HOME \\\"x\\\".ckpt'"), odd)
    }

    func testSDXLFileIsRefused() throws {
        let url = temp.file("sdxl.safetensors")
        try writeSafeTensors([.zeros("conditioner.embedders.1.model.positional_embedding", [77, 8]),
                              .zeros("model.diffusion_model.input_blocks.0.0.weight", [8, 4, 3, 3])], to: url)
        let text = errorText { _ = try SingleFileCheckpoint(url: url) }
        XCTAssertTrue(text.contains(url.path) && text.contains("SDXL") && text.contains("from_single_file"), text)
    }

    func testLoRAAndVAEFilesAreNotCheckpoints() throws {
        let lora = temp.file("lora.safetensors")
        try writeSafeTensors([.zeros("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", [4, 8]),
                              .zeros("lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", [8, 4]),
                              .zeros("lora_te_text_model_encoder_layers_0_mlp_fc1.alpha", [])], to: lora)
        let text = errorText { _ = try SingleFileCheckpoint(url: lora) }
        XCTAssertTrue(text.contains(lora.path) && text.contains("not a full Stable Diffusion checkpoint"), text)
        XCTAssertTrue(text.contains("LoRA") && text.contains("lora_unet_down_block…"), text)

        let vae = temp.file("vae.safetensors")
        try writeSafeTensors([.zeros("encoder.conv_in.weight", [8, 3, 3, 3]), .zeros("decoder.conv_out.weight", [3, 8, 3, 3])], to: vae)
        let vaeText = errorText { _ = try SingleFileCheckpoint(url: vae) }
        XCTAssertTrue(vaeText.contains("a VAE on its own") && vaeText.contains("encoder.* (1)"), vaeText)
    }
}
