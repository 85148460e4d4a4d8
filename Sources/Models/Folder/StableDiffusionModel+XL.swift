import Foundation
import Kernels

/// The model families a diffusers folder can hold, told apart by `model_index.json`.
public enum ModelFamily: String, Sendable, Equatable {
    /// Stable Diffusion 1.x / 2.x (`StableDiffusionPipeline`): one CLIP text encoder.
    case stableDiffusion = "SD"
    /// SDXL and its relatives (SDXL-Turbo, SSD-1B, Vega, Lightning, Hyper-SD as diffusers
    /// folders; `StableDiffusionXLPipeline`): two text encoders, `text_time` conditioning.
    case stableDiffusionXL = "SDXL"

    /// diffusers' pipeline class for the family.
    public var pipelineClass: String {
        switch self {
        case .stableDiffusion: return "StableDiffusionPipeline"
        case .stableDiffusionXL: return "StableDiffusionXLPipeline"
        }
    }

    /// Components the family needs, with the classes this engine runs for each.
    var expectedComponents: [(String, Set<String>)] {
        var parts: [(String, Set<String>)] = [
            ("tokenizer", ["CLIPTokenizer", "CLIPTokenizerFast"]),
            ("text_encoder", ["CLIPTextModel", "CLIPTextModelWithProjection"]),
            ("unet", ["UNet2DConditionModel"]),
            ("vae", ["AutoencoderKL"]),
        ]
        if self == .stableDiffusionXL {
            parts += [("tokenizer_2", ["CLIPTokenizer", "CLIPTokenizerFast"]),
                      ("text_encoder_2", ["CLIPTextModelWithProjection"])]
        }
        return parts
    }

    /// The family of the diffusers folder at `directory`, from its `model_index.json` alone
    /// (cheap: the intake asks it to refuse what the family cannot do).
    public init(folder directory: URL) throws {
        let indexURL = directory.appendingPathComponent("model_index.json")
        guard FileManager.default.fileExists(atPath: indexURL.path) else { throw ModelFolderError.notAFolder(path: directory.path) }
        self = try ModelIndex(contentsOf: indexURL).family
    }
}

/// SDXL's second text tower: `tokenizer_2/` (OpenCLIP's, padding with "!") and
/// `text_encoder_2/` (`CLIPTextModelWithProjection`, OpenCLIP bigG's shape in SDXL), with the
/// pipeline's `force_zeros_for_empty_prompt`.
public struct XLTextEncoder: @unchecked Sendable {
    /// `tokenizer_2/`
    public let tokenizer: CLIPTokenizer
    /// `text_encoder_2/`, loaded with its `text_projection`.
    public let encoder: CLIPTextEncoder
    /// `force_zeros_for_empty_prompt` of `model_index.json` (`StableDiffusionXLPipeline`'s
    /// default, true, when absent): with guidance and no negative prompt, the negative
    /// embeddings and pooled embeddings are zeros instead of the encoded "".
    public let forceZerosForEmptyPrompt: Bool

    /// Assembles loaded parts (benchmarks with random weights).
    public init(tokenizer: CLIPTokenizer, encoder: CLIPTextEncoder, forceZerosForEmptyPrompt: Bool) {
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.forceZerosForEmptyPrompt = forceZerosForEmptyPrompt
    }

    /// Loads `tokenizer_2/` and `text_encoder_2/` of the SDXL folder at `directory`.
    init(directory: URL, index: ModelIndex, weights: WeightPrecision = .stored, pool: ThreadPool) throws {
        tokenizer = try CLIPTokenizer(directory: directory.appendingPathComponent("tokenizer_2"))
        encoder = try CLIPTextEncoder(directory: directory.appendingPathComponent("text_encoder_2"), projection: true,
                                      weights: weights, pool: pool)
        forceZerosForEmptyPrompt = index.forceZerosForEmptyPrompt ?? true
    }
}

extension StableDiffusionModel {
    /// SDXL's contract between the parts (what `StableDiffusionXLPipeline` and
    /// `UNet2DConditionModel` would fail on): the two encoders' hidden sizes add up to the
    /// UNet's `cross_attention_dim`; `addition_embed_type` is `text_time` with
    /// `6 × addition_time_embed_dim + text_encoder_2 projection_dim =
    /// projection_class_embeddings_input_dim` (`_get_add_time_ids`' check); both tokenizers fit
    /// their encoders and have the same window; plus the SD checks of UNet and VAE.
    static func checkCompatibleXL(folder: String, tokenizer: CLIPTokenizer, text: CLIPTextConfig,
                                  second: XLTextEncoder, unet: UNetConfig, vae: VAEConfig) throws {
        let text2 = second.encoder.config
        try checkCompatible(folder: folder, tokenizer: tokenizer, text: text, unet: unet, vae: vae,
                            crossAttentionDim: text.hiddenSize + text2.hiddenSize)
        try checkTokenizer(folder: folder, second.tokenizer, fits: text2, names: ("tokenizer_2", "text_encoder_2"))
        if second.tokenizer.maxLength != tokenizer.maxLength {
            throw ModelFolderError.incompatible(folder: folder, reason: "tokenizer model_max_length \(tokenizer.maxLength) ≠ tokenizer_2 model_max_length \(second.tokenizer.maxLength) (the two prompt embeddings are concatenated token by token)")
        }
        guard let addition = unet.additionEmbedding else {
            throw ModelFolderError.incompatible(folder: folder, reason: "unet has no addition_embed_type \"text_time\", which StableDiffusionXLPipeline feeds (pooled text embeds and time ids)")
        }
        let projection = second.encoder.projectionWidth ?? 0
        if addition.textEmbedsWidth(timeIDCount: 6) != projection {
            throw ModelFolderError.incompatible(folder: folder, reason: "unet projection_class_embeddings_input_dim \(addition.inputDim) ≠ 6 time ids × addition_time_embed_dim \(addition.timeEmbedDim) + text_encoder_2 projection_dim \(projection)")
        }
    }

    /// A tokenizer's special ids and window fit its text encoder (`names`: the folders, for the message).
    static func checkTokenizer(folder: String, _ tokenizer: CLIPTokenizer, fits text: CLIPTextConfig,
                               names: (tokenizer: String, encoder: String)) throws {
        let maxID = max(tokenizer.bosTokenID, tokenizer.eosTokenID, tokenizer.padTokenID)
        if maxID >= text.vocabSize {
            throw ModelFolderError.incompatible(folder: folder, reason: "\(names.tokenizer) special token id \(maxID) ≥ \(names.encoder) vocab_size \(text.vocabSize)")
        }
        if tokenizer.maxLength > text.maxPositionEmbeddings {
            throw ModelFolderError.incompatible(folder: folder, reason: "\(names.tokenizer) model_max_length \(tokenizer.maxLength) > \(names.encoder) max_position_embeddings \(text.maxPositionEmbeddings)")
        }
    }
}
