import Foundation

/// Architecture of a transformers `CLIPTextModel`, read from `text_encoder/config.json`.
public struct CLIPTextConfig: Sendable, Equatable {
    /// `vocab_size`: rows of the token embedding
    public var vocabSize: Int
    /// `hidden_size`: width of every token state
    public var hiddenSize: Int
    /// `intermediate_size`: MLP width
    public var intermediateSize: Int
    /// `num_hidden_layers`: encoder layers (23 for SD 2.x)
    public var numHiddenLayers: Int
    /// `num_attention_heads`
    public var numAttentionHeads: Int
    /// `max_position_embeddings`: longest token sequence
    public var maxPositionEmbeddings: Int
    /// `hidden_act`: `quick_gelu` (CLIP ViT-L, SD 1.x) or `gelu` (OpenCLIP-H, SD 2.x)
    public var hiddenAct: ActivationKind
    /// `layer_norm_eps`
    public var layerNormEps: Float
    /// `projection_dim`: width of `text_projection` (`CLIPTextModelWithProjection`, SDXL's
    /// `text_encoder_2`, whose pooled output SDXL's UNet reads); informative for `CLIPTextModel`.
    public var projectionDim: Int?
    /// `eos_token_id` (transformers' default 49407): where `CLIPTextTransformer` pools. The
    /// legacy value 2 (configs written before transformers PR #24773, SDXL's among them) means
    /// "the position of the largest id" instead (see `CLIPTextEncoder.poolingPositions`).
    public var eosTokenID: Int

    init(json c: ConfigJSON) throws {
        vocabSize = try c.positiveInt("vocab_size", default: 49408)
        hiddenSize = try c.positiveInt("hidden_size", default: 512)
        intermediateSize = try c.positiveInt("intermediate_size", default: 2048)
        numHiddenLayers = try c.positiveInt("num_hidden_layers", default: 12)
        numAttentionHeads = try c.positiveInt("num_attention_heads", default: 8)
        maxPositionEmbeddings = try c.positiveInt("max_position_embeddings", default: 77)
        let act = try c.string("hidden_act", default: "quick_gelu")
        switch act {
        case "quick_gelu": hiddenAct = .quickGELU
        case "gelu": hiddenAct = .gelu
        default: throw ModelConfigError.unsupported(file: c.file, field: "hidden_act", value: act)
        }
        layerNormEps = Float(try c.double("layer_norm_eps", default: 1e-5))
        projectionDim = c.has("projection_dim") ? try c.positiveInt("projection_dim") : nil
        eosTokenID = try c.int("eos_token_id", default: 49407)
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelConfigError.invalidValue(file: c.file, field: "num_attention_heads", reason: "hidden_size \(hiddenSize) is not divisible by \(numAttentionHeads) heads")
        }
        if let arch = c.object["architectures"] as? [String], let a = arch.first, a != "CLIPTextModel", a != "CLIPTextModelWithProjection" {
            throw ModelConfigError.unsupported(file: c.file, field: "architectures", value: a)
        }
    }

    /// Reads `text_encoder/config.json`.
    public init(contentsOf url: URL) throws { try self.init(json: ConfigJSON(url: url)) }

    /// CLIP ViT-L/14 text tower (SD 1.x).
    public static var sd15: CLIPTextConfig {
        let json: [String: Any] = ["hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                                   "num_attention_heads": 12, "hidden_act": "quick_gelu", "projection_dim": 768]
        return builtInConfig { try CLIPTextConfig(json: ConfigJSON(file: "<sd15-text>", object: json)) }
    }

    /// OpenCLIP ViT-bigG/14 text tower as SDXL's `text_encoder_2` ships it
    /// (`CLIPTextModelWithProjection`, stabilityai/stable-diffusion-xl-base-1.0
    /// `text_encoder_2/config.json`; its `text_encoder` is `sd15`'s CLIP ViT-L).
    public static var sdxlBigG: CLIPTextConfig {
        let json: [String: Any] = ["hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
                                   "num_attention_heads": 20, "hidden_act": "gelu", "projection_dim": 1280,
                                   "eos_token_id": 2, "architectures": ["CLIPTextModelWithProjection"]]
        return builtInConfig { try CLIPTextConfig(json: ConfigJSON(file: "<sdxl-text-2>", object: json)) }
    }

    /// OpenCLIP ViT-H/14 text tower as shipped with SD 2.x (23 of its 24 layers).
    public static var sd21: CLIPTextConfig {
        let json: [String: Any] = ["hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23,
                                   "num_attention_heads": 16, "hidden_act": "gelu", "projection_dim": 512]
        return builtInConfig { try CLIPTextConfig(json: ConfigJSON(file: "<sd21-text>", object: json)) }
    }
}
