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
    /// `force_zeros_for_empty_prompt` (a `StableDiffusionXLPipeline` config value: an absent
    /// negative prompt gives zero embeddings, not the encoded ""); nil when the file has none.
    public var forceZerosForEmptyPrompt: Bool?

    /// Reads `model_index.json`.
    public init(contentsOf url: URL) throws {
        let json = try ConfigJSON(url: url)
        pipelineClass = try json.string("_class_name", default: "StableDiffusionPipeline")
        var comps: [String: String] = [:]
        for (key, value) in json.object where !key.hasPrefix("_") {
            if let pair = value as? [Any], pair.count == 2, let cls = pair[1] as? String { comps[key] = cls }
        }
        components = comps
        forceZerosForEmptyPrompt = json.has("force_zeros_for_empty_prompt")
            ? try json.bool("force_zeros_for_empty_prompt", default: true) : nil
    }

    /// The model family the index describes: SDXL for `StableDiffusionXLPipeline` (or any
    /// index with a `text_encoder_2`), Stable Diffusion 1.x/2.x otherwise.
    public var family: ModelFamily {
        pipelineClass == ModelFamily.stableDiffusionXL.pipelineClass || components["text_encoder_2"] != nil
            ? .stableDiffusionXL : .stableDiffusion
    }
}

/// A Stable Diffusion 1.x / 2.x or SDXL model in the diffusers folder layout
/// (`model_index.json`, `tokenizer/`, `text_encoder/`, `unet/`, `vae/`, `scheduler/`; SDXL
/// adds `tokenizer_2/` and `text_encoder_2/`, see StableDiffusionModel+XL.swift), every
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
    /// SDXL's second text encoder and its tokenizer (`StableDiffusionXLPipeline`); nil for
    /// SD 1.x / 2.x.
    public let xl: XLTextEncoder?

    /// SD 1.x/2.x or SDXL (the latter when `xl` is present).
    public var family: ModelFamily { xl == nil ? .stableDiffusion : .stableDiffusionXL }

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
        let family = index.family
        if family == .stableDiffusionXL && index.pipelineClass != family.pipelineClass {
            // The refiner (StableDiffusionXLImg2ImgPipeline, no text_encoder), SDXL inpainting, ControlNet …
            throw ModelFolderError.incompatible(folder: directory.path, reason: "model_index.json's _class_name is \(index.pipelineClass); "
                + "of the SDXL pipelines only \(family.pipelineClass) (text-to-image) runs here")
        }
        for (name, classes) in family.expectedComponents {
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
        switch family {
        case .stableDiffusion:
            xl = nil
            if unet.config.additionEmbedding != nil {
                throw ModelFolderError.incompatible(folder: directory.path, reason: "unet has addition_embed_type \"text_time\" (an SDXL UNet), but model_index.json's _class_name is \(index.pipelineClass), which has no second text encoder to feed it; an SDXL folder is a StableDiffusionXLPipeline with text_encoder_2 and tokenizer_2")
            }
            try StableDiffusionModel.checkCompatible(folder: directory.path, tokenizer: tokenizer,
                                                     text: textEncoder.config, unet: unet.config, vae: vae.config)
        case .stableDiffusionXL:
            let second = try XLTextEncoder(directory: directory, index: index, weights: weights, pool: pool)
            xl = second
            try StableDiffusionModel.checkCompatibleXL(folder: directory.path, tokenizer: tokenizer, text: textEncoder.config,
                                                       second: second, unet: unet.config, vae: vae.config)
        }
    }

    /// Assembles loaded components (the single-file loader's path).
    init(directory: URL, index: ModelIndex, tokenizer: CLIPTokenizer, textEncoder: CLIPTextEncoder,
         unet: UNet, vae: VAE, xl: XLTextEncoder? = nil, singleFile: SingleFileCheckpointInfo?) {
        vae.shareWorkspace(of: unet)
        self.directory = directory
        self.index = index
        self.tokenizer = tokenizer
        self.textEncoder = textEncoder
        self.unet = unet
        self.vae = vae
        self.xl = xl
        self.singleFile = singleFile
    }

    /// The SD 1.x/2.x contract between the parts; `crossAttentionDim` is what the UNet's
    /// attention reads (the text encoder's hidden size, or SDXL's two encoders' together).
    static func checkCompatible(folder: String, tokenizer: CLIPTokenizer, text: CLIPTextConfig,
                                unet: UNetConfig, vae: VAEConfig, crossAttentionDim: Int? = nil) throws {
        let contextWidth = crossAttentionDim ?? text.hiddenSize
        if contextWidth != unet.crossAttentionDim {
            let what = crossAttentionDim == nil ? "text_encoder hidden_size \(text.hiddenSize)"
                : "text_encoder hidden_size \(text.hiddenSize) + text_encoder_2 hidden_size \(contextWidth - text.hiddenSize) = \(contextWidth)"
            throw ModelFolderError.incompatible(folder: folder, reason: "\(what) ≠ unet cross_attention_dim \(unet.crossAttentionDim)")
        }
        // An inpainting UNet (StableDiffusionInpaintPipeline) reads latents + mask + masked-image
        // latents, 2 · latent_channels + 1, and predicts latent_channels.
        let inpainting = unet.inChannels == 2 * vae.latentChannels + 1
        if (vae.latentChannels != unet.inChannels && !inpainting) || vae.latentChannels != unet.outChannels {
            throw ModelFolderError.incompatible(folder: folder, reason: "vae latent_channels \(vae.latentChannels) ≠ unet in/out channels \(unet.inChannels)/\(unet.outChannels)")
        }
        try checkTokenizer(folder: folder, tokenizer, fits: text, names: ("tokenizer", "text_encoder"))
    }

    /// Latent side for an image side (image / VAE downscale factor), or nil when not a multiple.
    public func latentSide(forImageSide side: Int) -> Int? {
        let f = vae.downscaleFactor
        return side > 0 && side % f == 0 ? side / f : nil
    }
}
