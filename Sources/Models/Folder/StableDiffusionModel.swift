import Foundation
import Kernels

/// Problems with a diffusers model folder as a whole.
public enum ModelFolderError: Error, CustomStringConvertible, Equatable {
    case notAFolder(path: String)
    case missingComponent(folder: String, component: String)
    case unsupportedComponent(folder: String, component: String, className: String)
    case incompatible(folder: String, reason: String)

    public var description: String {
        switch self {
        case let .notAFolder(p):
            return "\(p): not a diffusers model folder (no model_index.json)"
        case let .missingComponent(f, c):
            return "\(f): component '\(c)' is missing (model_index.json or the \(c)/ folder)"
        case let .unsupportedComponent(f, c, k):
            return "\(f): component '\(c)' is a \(k), which this engine does not run"
        case let .incompatible(f, r):
            return "\(f): components do not fit together: \(r)"
        }
    }
}

/// `model_index.json`: the pipeline class and, per component, its (library, class).
public struct ModelIndex: Sendable, Equatable {
    /// `_class_name` (for example `StableDiffusionPipeline`).
    public var pipelineClass: String
    /// Component name → class name (`"unet"` → `"UNet2DConditionModel"`); null entries are left out.
    public var components: [String: String]

    /// Reads `model_index.json`.
    public init(contentsOf url: URL) throws {
        let json = try ConfigJSON(url: url)
        pipelineClass = try json.string("_class_name", default: "StableDiffusionPipeline")
        var comps: [String: String] = [:]
        for (key, value) in json.object where !key.hasPrefix("_") {
            if let pair = value as? [Any], pair.count == 2, let cls = pair[1] as? String { comps[key] = cls }
        }
        components = comps
    }
}

/// A Stable Diffusion 1.x / 2.x model in the diffusers folder layout
/// (`model_index.json`, `tokenizer/`, `text_encoder/`, `unet/`, `vae/`, `scheduler/`), every
/// component's architecture read from its own config. The scheduler config is left to
/// `Sampling` (see `schedulerConfigURL`).
public final class StableDiffusionModel: @unchecked Sendable {
    /// The folder it was loaded from.
    public let directory: URL
    /// Its `model_index.json`.
    public let index: ModelIndex
    /// `tokenizer/`
    public let tokenizer: CLIPTokenizer
    /// `text_encoder/`
    public let textEncoder: CLIPTextEncoder
    /// `unet/`
    public let unet: UNet
    /// `vae/`
    public let vae: VAE

    /// What was inferred when the model was loaded from a single-file checkpoint
    /// (`init(singleFile:tokenizerDirectory:prediction:pool:)`), nil for a diffusers folder.
    public private(set) var singleFile: SingleFileCheckpointInfo?

    /// `scheduler/scheduler_config.json` (beta schedule, prediction_type, …). A model loaded
    /// from a single file has no such file: use `singleFile?.schedulerConfigJSON`.
    public var schedulerConfigURL: URL { directory.appendingPathComponent("scheduler/scheduler_config.json") }

    /// Loads every component, layer weights kept as `weights` says; throws a typed error
    /// naming the file / tensor that is wrong.
    public init(directory: URL, weights: WeightPrecision = .stored, pool: ThreadPool) throws {
        self.directory = directory
        let indexURL = directory.appendingPathComponent("model_index.json")
        guard FileManager.default.fileExists(atPath: indexURL.path) else { throw ModelFolderError.notAFolder(path: directory.path) }
        index = try ModelIndex(contentsOf: indexURL)
        let expected: [(String, Set<String>)] = [
            ("tokenizer", ["CLIPTokenizer", "CLIPTokenizerFast"]),
            ("text_encoder", ["CLIPTextModel", "CLIPTextModelWithProjection"]),
            ("unet", ["UNet2DConditionModel"]),
            ("vae", ["AutoencoderKL"]),
        ]
        for (name, classes) in expected {
            guard let cls = index.components[name] else {
                throw ModelFolderError.missingComponent(folder: directory.path, component: name)
            }
            guard classes.contains(cls) else {
                throw ModelFolderError.unsupportedComponent(folder: directory.path, component: name, className: cls)
            }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path, isDirectory: &isDir), isDir.boolValue else {
                throw ModelFolderError.missingComponent(folder: directory.path, component: name)
            }
        }
        tokenizer = try CLIPTokenizer(directory: directory.appendingPathComponent("tokenizer"))
        textEncoder = try CLIPTextEncoder(directory: directory.appendingPathComponent("text_encoder"), weights: weights, pool: pool)
        unet = try UNet(directory: directory.appendingPathComponent("unet"), weights: weights, pool: pool)
        vae = try VAE(directory: directory.appendingPathComponent("vae"), weights: weights, pool: pool)
        vae.shareWorkspace(of: unet)
        try StableDiffusionModel.checkCompatible(folder: directory.path, tokenizer: tokenizer,
                                                 text: textEncoder.config, unet: unet.config, vae: vae.config)
    }

    /// Assembles loaded components (the single-file loader's path).
    init(directory: URL, index: ModelIndex, tokenizer: CLIPTokenizer, textEncoder: CLIPTextEncoder,
         unet: UNet, vae: VAE, singleFile: SingleFileCheckpointInfo?) {
        vae.shareWorkspace(of: unet)
        self.directory = directory
        self.index = index
        self.tokenizer = tokenizer
        self.textEncoder = textEncoder
        self.unet = unet
        self.vae = vae
        self.singleFile = singleFile
    }

    static func checkCompatible(folder: String, tokenizer: CLIPTokenizer, text: CLIPTextConfig,
                                unet: UNetConfig, vae: VAEConfig) throws {
        if text.hiddenSize != unet.crossAttentionDim {
            throw ModelFolderError.incompatible(folder: folder, reason: "text_encoder hidden_size \(text.hiddenSize) ≠ unet cross_attention_dim \(unet.crossAttentionDim)")
        }
        // An inpainting UNet (StableDiffusionInpaintPipeline) reads latents + mask + masked-image
        // latents, 2 · latent_channels + 1, and predicts latent_channels.
        let inpainting = unet.inChannels == 2 * vae.latentChannels + 1
        if (vae.latentChannels != unet.inChannels && !inpainting) || vae.latentChannels != unet.outChannels {
            throw ModelFolderError.incompatible(folder: folder, reason: "vae latent_channels \(vae.latentChannels) ≠ unet in/out channels \(unet.inChannels)/\(unet.outChannels)")
        }
        let maxID = max(tokenizer.bosTokenID, tokenizer.eosTokenID, tokenizer.padTokenID)
        if maxID >= text.vocabSize {
            throw ModelFolderError.incompatible(folder: folder, reason: "tokenizer special token id \(maxID) ≥ text_encoder vocab_size \(text.vocabSize)")
        }
        if tokenizer.maxLength > text.maxPositionEmbeddings {
            throw ModelFolderError.incompatible(folder: folder, reason: "tokenizer model_max_length \(tokenizer.maxLength) > text_encoder max_position_embeddings \(text.maxPositionEmbeddings)")
        }
    }

    /// Latent side for an image side (image / VAE downscale factor), or nil when not a multiple.
    public func latentSide(forImageSide side: Int) -> Int? {
        let f = vae.downscaleFactor
        return side > 0 && side % f == 0 ? side / f : nil
    }
}
