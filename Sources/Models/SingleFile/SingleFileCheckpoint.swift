import Foundation
import Kernels

/// What a single-file checkpoint's UNet predicts (`prediction_type` of its scheduler).
public enum CheckpointPrediction: String, Sendable, Equatable, CaseIterable {
    /// The added noise (SD 1.x, SD 2.x 512-pixel base).
    case epsilon
    /// The velocity (SD 2.x 768-pixel models).
    case vPrediction = "v_prediction"

    /// Parses a config value: `epsilon`, `v` or `v_prediction`.
    public init?(configValue: String) {
        switch configValue {
        case "epsilon", "eps": self = .epsilon
        case "v", "v_prediction", "v-prediction": self = .vPrediction
        default: return nil
        }
    }
}

/// Stable Diffusion generations a single file can hold.
public enum CheckpointFamily: String, Sendable, Equatable {
    /// SD 1.x: CLIP ViT-L text encoder (`cond_stage_model.transformer.*`).
    case sd1 = "SD 1.x"
    /// SD 2.x: OpenCLIP ViT-H text encoder (`cond_stage_model.model.*`).
    case sd2 = "SD 2.x"

    /// The pad token of the family's tokenizer config (stable-diffusion-v1-5: `<|endoftext|>`;
    /// stable-diffusion-2-1: `!`), used when the tokenizer folder is a bare vocabulary.
    public var standardPadToken: String {
        switch self {
        case .sd1: return "<|endoftext|>"
        case .sd2: return "!"
        }
    }
}

/// What was inferred from a single-file checkpoint's tensor names and shapes (nothing but
/// its header is read for this).
public struct SingleFileCheckpointInfo: Sendable, Equatable {
    /// The file.
    public var path: String
    /// SD 1.x or SD 2.x, from the text encoder's key names.
    public var family: CheckpointFamily
    /// A 9-input-channel UNet (latents + mask + masked-image latents).
    public var isInpainting: Bool
    /// SD 1.x: epsilon; SD 2.x: v_prediction (the 768-pixel models; epsilon for SD 2.x
    /// inpainting) unless overridden — the weights do not tell.
    public var prediction: CheckpointPrediction
    /// The inferred `unet/config.json`.
    public var unet: UNetConfig
    /// The inferred `vae/config.json`.
    public var vae: VAEConfig
    /// The inferred `text_encoder/config.json`.
    public var textEncoder: CLIPTextConfig
    /// The family's standard `scheduler/scheduler_config.json` (SD 1.5's PNDMScheduler or
    /// SD 2.1's DDIMScheduler config) with `prediction_type` set to `prediction`, as JSON.
    public var schedulerConfigJSON: Data

    /// The UNet's `sample_size` (latent side) of the family's hub config, which the weights
    /// do not tell: 96 for the 768-pixel v-prediction SD 2.x models (stable-diffusion-2-1),
    /// 64 for SD 1.x, SD 2.x base and inpainting (v1-5, 2-1-base, 2-inpainting).
    public var sampleSize: Int { family == .sd2 && prediction == .vPrediction ? 96 : 64 }
}

/// A Stable Diffusion 1.x / 2.x checkpoint in one `.safetensors` file with the original LDM
/// key names (`model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.*`), the
/// form shared on model sites. Opening it memory-maps the file and infers the architecture
/// from tensor names and shapes, like diffusers' `from_single_file` / ComfyUI's model
/// detection; the components are loaded on demand, mapping each diffusers tensor name to
/// its original key.
///
/// Pickle checkpoints (`.ckpt`, `.pt`, `.pth`, `.bin`) are refused without being read;
/// SDXL files and files without a UNet (LoRAs, VAEs …) are refused with what they look like.
public final class SingleFileCheckpoint: @unchecked Sendable {
    /// Everything inferred (family, configs, prediction type, scheduler config).
    public let info: SingleFileCheckpointInfo
    let file: SafeTensorsFile
    /// Original keys of the one OpenCLIP block diffusers drops (SD 2.x uses the penultimate layer).
    private let droppedPrefix: String?
    private let vaePrefix: String
    private let usage = SingleFileUsage()

    static let pickleExtensions: Set<String> = ["ckpt", "pt", "pth", "bin", "pkl", "pickle"]

    /// Opens `url` and infers the architecture. `prediction` overrides the family default
    /// (SD 2.x files do not say whether they are v-prediction 768 or epsilon 512 models).
    public init(url: URL, prediction: CheckpointPrediction? = nil) throws {
        let path = url.path
        if Self.pickleExtensions.contains(url.pathExtension.lowercased()) {
            throw SingleFileError.pickleRefused(file: path, command: SingleFileError.conversionCommand(for: path))
        }
        let file: SafeTensorsFile
        do {
            file = try SafeTensorsFile(path: path)
        } catch let error as SafeTensorsError {
            // A pickle (zip archive or raw pickle) renamed to .safetensors: say so.
            if Self.looksLikePickle(path) {
                throw SingleFileError.pickleRefused(file: path, command: SingleFileError.conversionCommand(for: path))
            }
            throw error
        }
        self.file = file
        let layout = try Self.infer(tensors: file.tensors, path: path, prediction: prediction)
        info = layout.info
        droppedPrefix = layout.droppedPrefix
        vaePrefix = layout.vaePrefix
    }

    /// What `infer` finds besides the info: where the VAE lives and which keys are dropped.
    struct Layout {
        var info: SingleFileCheckpointInfo
        var vaePrefix: String
        var droppedPrefix: String?
    }

    /// Detects the family and infers the configs from a tensor table (a file's header).
    static func infer(tensors: [String: SafeTensorInfo], path: String, prediction: CheckpointPrediction?) throws -> Layout {
        let inspector = ShapeInspector(tensors: tensors, path: path)
        let names = Array(tensors.keys)
        if names.contains(where: { $0.hasPrefix("conditioner.embedders.") }) {
            throw SingleFileError.sdxlUnsupported(file: path)
        }
        guard names.contains(where: { $0.hasPrefix(LDMUNetKeyMap.prefix) }) else {
            throw SingleFileError.notAFullCheckpoint(file: path, prefixes: prefixSummary(names), hint: hint(names))
        }
        let family: CheckpointFamily
        if names.contains(where: { $0.hasPrefix(LDMCLIPKeyMap.prefix) }) {
            family = .sd1
        } else if names.contains(where: { $0.hasPrefix(LDMOpenCLIPKeyMap.prefix) }) {
            family = .sd2
        } else {
            throw SingleFileError.unknownTextEncoder(file: path, prefixes: prefixSummary(names))
        }
        let unet = try inspector.unetConfig(family: family)
        guard let vaePrefix = ["first_stage_model.", "vae."].first(where: { p in names.contains { $0.hasPrefix(p) } }) else {
            throw SingleFileError.missingPart(file: path, part: "VAE", expectedPrefix: "first_stage_model.")
        }
        let vae = try inspector.vaeConfig(prefix: vaePrefix)
        let text: CLIPTextConfig
        var droppedPrefix: String?
        switch family {
        case .sd1:
            text = try inspector.clipConfig()
        case .sd2:
            let (config, resblocks) = try inspector.openCLIPConfig()
            text = config
            droppedPrefix = LDMOpenCLIPKeyMap.prefix + "transformer.resblocks.\(resblocks - 1)."
        }
        // SD 2.x text-to-image defaults to the 768-pixel v-prediction models; SD 2.x
        // inpainting (stable-diffusion-2-inpainting) and all SD 1.x predict epsilon.
        let isInpainting = unet.inChannels == 9
        let chosen = prediction ?? (family == .sd2 && !isInpainting ? .vPrediction : .epsilon)
        let info = SingleFileCheckpointInfo(
            path: path, family: family, isInpainting: isInpainting, prediction: chosen,
            unet: unet, vae: vae, textEncoder: text,
            schedulerConfigJSON: schedulerConfigJSON(family: family, prediction: chosen))
        return Layout(info: info, vaePrefix: vaePrefix, droppedPrefix: droppedPrefix)
    }

    // MARK: - Components

    /// The UNet (`model.diffusion_model.*`).
    func loadUNet(weights: WeightPrecision, pool: ThreadPool) throws -> UNet {
        let c = info.unet
        let map = LDMUNetKeyMap(layers: c.layersPerBlock, upAttention: c.upBlockTypes.map { $0 == .crossAttention })
        let source = SingleFileWeightSource(file: file, component: "\(file.path) (UNet)", usage: usage, precision: weights, map: map.original)
        return UNet(config: c, weights: try UNetWeights(config: c, source: source), pool: pool)
    }

    /// The VAE (`first_stage_model.*`), encoder included.
    func loadVAE(weights: WeightPrecision, pool: ThreadPool) throws -> VAE {
        let c = info.vae
        let map = LDMVAEKeyMap(prefix: vaePrefix, levels: c.blockOutChannels.count)
        let source = SingleFileWeightSource(file: file, component: "\(file.path) (VAE)", usage: usage, precision: weights, map: map.original)
        let encoder = try VAEEncoderWeights(config: c, source: source)
        let decoder = try VAEDecoderWeights(config: c, source: source)
        try source.finish()
        return VAE(config: c, encoder: encoder, decoder: decoder, pool: pool)
    }

    /// The text encoder (`cond_stage_model.*`).
    func loadTextEncoder(weights: WeightPrecision, pool: ThreadPool) throws -> CLIPTextEncoder {
        let map: (String) -> LDMTensorRef? = info.family == .sd1 ? LDMCLIPKeyMap().original : LDMOpenCLIPKeyMap().original
        let source = SingleFileWeightSource(file: file, component: "\(file.path) (text encoder)", usage: usage, precision: weights, map: map)
        return try CLIPTextEncoder(config: info.textEncoder, source: source, pool: pool)
    }

    /// Throws `unexpectedTensors` for tensors no loaded component read that are not known
    /// to be ignorable. Call after loading every component.
    func checkLeftovers() throws {
        let used = usage.used
        let extra = file.tensors.keys.filter { !used.contains($0) && !isIgnorable($0) }.sorted()
        if !extra.isEmpty { throw SingleFileError.unexpectedTensors(file: file.path, tensors: extra) }
    }

    /// DDPM schedule buffers the LDM training module saves next to the weights.
    static let scheduleBuffers: Set<String> = [
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
        "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
        "logvar", "lvlb_weights",
    ]

    /// Tensors a checkpoint may hold that text-to-image does not use: EMA copies
    /// (`model_ema.*`; diffusers' default `extract_ema=False` ignores them too), the DDPM
    /// schedule buffers, `position_ids`, OpenCLIP's `logit_scale` / `text_projection` and
    /// the last resblock diffusers drops (`SD_2_TEXT_ENCODER_KEYS_TO_IGNORE`).
    func isIgnorable(_ key: String) -> Bool {
        if key.hasPrefix("model_ema.") || Self.scheduleBuffers.contains(key) || key.hasSuffix(".position_ids") { return true }
        if key == LDMOpenCLIPKeyMap.prefix + "logit_scale" || key == LDMOpenCLIPKeyMap.prefix + "text_projection" { return true }
        if let dropped = droppedPrefix, key.hasPrefix(dropped) { return true }
        return false
    }

    // MARK: - Scheduler

    /// SD 1.5's `scheduler_config.json` (runwayml/stable-diffusion-v1-5) or SD 2.1's
    /// (stabilityai/stable-diffusion-2-1), with `prediction_type` = `prediction`.
    static func schedulerConfig(family: CheckpointFamily, prediction: CheckpointPrediction) -> [String: Any] {
        var config: [String: Any] = [
            "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
            "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "clip_sample": false,
            "prediction_type": prediction.rawValue,
        ]
        config["_class_name"] = family == .sd1 ? "PNDMScheduler" : "DDIMScheduler"
        return config
    }

    static func schedulerConfigJSON(family: CheckpointFamily, prediction: CheckpointPrediction) -> Data {
        // A literal of strings, numbers and booleans: serialization cannot fail.
        (try? JSONSerialization.data(withJSONObject: schedulerConfig(family: family, prediction: prediction),
                                     options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    // MARK: - Diagnostics

    /// True when the file starts like a PyTorch zip archive or a raw pickle.
    static func looksLikePickle(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = [UInt8](handle.readData(ofLength: 4))
        guard head.count >= 2 else { return false }
        if head.count >= 4, head[0] == 0x50, head[1] == 0x4B, head[2] == 0x03, head[3] == 0x04 { return true }  // "PK\3\4"
        return head[0] == 0x80 && (2...5).contains(head[1])  // pickle PROTO opcode
    }

    /// The key prefixes of `names` with their counts, most common first (at most 8), e.g.
    /// `lora_unet_down_blocks… (192)`.
    static func prefixSummary(_ names: [String]) -> [String] {
        var counts: [String: Int] = [:]
        for name in names {
            let parts = name.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
            var prefix = String(parts[0])
            if ["model", "first_stage_model", "cond_stage_model", "conditioner"].contains(prefix), parts.count > 2 {
                prefix += "." + parts[1]
            }
            if prefix.count > 24 { prefix = String(prefix.prefix(20)) + "…" }
            counts[prefix + (parts.count > 1 ? ".*" : ""), default: 0] += 1
        }
        let sorted = counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
        var out = sorted.prefix(8).map { "\($0.key) (\($0.value))" }
        if sorted.count > 8 { out.append("… \(sorted.count - 8) more") }
        return out
    }

    /// What a file without a UNet looks like, when recognisable.
    static func hint(_ names: [String]) -> String? {
        if names.isEmpty { return "an empty file" }
        if names.contains(where: { $0.contains("lora_down") || $0.contains("lora_up") || $0.contains(".lora_A.") || $0.contains(".lora_B.") }) {
            return "a LoRA (load it on top of a full checkpoint)"
        }
        if names.allSatisfy({ $0.hasPrefix("encoder.") || $0.hasPrefix("decoder.") || $0.hasPrefix("quant_conv") || $0.hasPrefix("post_quant_conv") || $0.hasPrefix("first_stage_model.") }) {
            return "a VAE on its own"
        }
        if names.contains(where: { $0.hasPrefix("down_blocks.") || $0.hasPrefix("mid_block.") }) {
            return "a component in the diffusers layout (load the diffusers folder instead)"
        }
        if names.contains(where: { $0 == "emb_params" || $0.hasPrefix("string_to_param") || $0 == "clip_l" || $0 == "clip_g" }) {
            return "a textual-inversion embedding"
        }
        return nil
    }
}
