import Foundation

/// Kind of a UNet down block (diffusers `down_block_types`).
public enum UNetDownBlockKind: String, Sendable {
    case crossAttention = "CrossAttnDownBlock2D"
    case plain = "DownBlock2D"
}

/// Kind of a UNet up block (diffusers `up_block_types`).
public enum UNetUpBlockKind: String, Sendable {
    case crossAttention = "CrossAttnUpBlock2D"
    case plain = "UpBlock2D"
}

/// Kind of the UNet's mid block (diffusers `mid_block_type`, built by `get_mid_block`).
public enum UNetMidBlockKind: String, Sendable {
    /// `UNetMidBlock2DCrossAttn`: resnet, transformer, resnet (the default)
    case crossAttention = "UNetMidBlock2DCrossAttn"
    /// `UNetMidBlock2D` as `UNet2DConditionModel` builds it (`num_layers=0`,
    /// `add_attention=False`): one resnet (SSD-1B, Segmind Vega)
    case resnet = "UNetMidBlock2D"
    /// `mid_block_type: null`: no mid block at all
    case absent = "null"
}

/// Activation named by a config's `act_fn` / `hidden_act`.
public enum ActivationKind: String, Sendable {
    case silu, gelu
    case quickGELU = "quick_gelu"
}

/// Architecture of a diffusers `UNet2DConditionModel`, read from `unet/config.json`.
/// The positional-timestep, text-conditioned SD 1.x / 2.x / SDXL family is supported (SDXL's
/// `text_time` addition embedding, per-level and per-layer transformer depths, SSD-1B / Vega's
/// asymmetric up blocks and single-resnet mid block); options that change the graph beyond
/// that (class embeddings, other addition embeddings, scale-shift norms …) are rejected with
/// `ModelConfigError.unsupported` instead of being silently ignored.
public struct UNetConfig: Sendable, Equatable {
    /// `in_channels` (latent channels in; 9 for inpainting UNets) and `out_channels`
    /// (channels predicted)
    public var inChannels: Int, outChannels: Int
    /// `center_input_sample`: map the input from [0, 1] to [−1, 1] first
    public var centerInputSample: Bool
    /// `sample_size` (latent side), informative only.
    public var sampleSize: Int?
    /// `block_out_channels`: width of each resolution level
    public var blockOutChannels: [Int]
    /// `down_block_types`
    public var downBlockTypes: [UNetDownBlockKind]
    /// `up_block_types`
    public var upBlockTypes: [UNetUpBlockKind]
    /// `layers_per_block` (int or per block) — up blocks have one more
    public var layersPerBlock: [Int]
    /// Attention heads per down block (diffusers: `num_attention_heads or attention_head_dim`,
    /// the latter being the historical misnomer SD 1.x/2.x configs use).
    public var numAttentionHeads: [Int]
    /// Transformer layers of each down block's attentions, [block][layer]
    /// (`transformer_layers_per_block`: an int, per block, or per block and layer).
    public var transformerLayersPerBlock: [[Int]]
    /// Transformer layers of each up block's attentions, [up block][layer] (layers + 1 per
    /// block): `reverse_transformer_layers_per_block`, or the down blocks' reversed.
    public var upTransformerLayersPerBlock: [[Int]]
    /// `mid_block_type`
    public var midBlockType: UNetMidBlockKind
    /// Transformer layers of the mid block's attention (`transformer_layers_per_block[-1]`);
    /// unused unless `midBlockType` is `.crossAttention`.
    public var midTransformerLayers: Int
    /// `cross_attention_dim`: width of the text states attended to
    public var crossAttentionDim: Int
    /// `true`: Transformer2DModel's proj_in/proj_out are Linear (SD 2.x); `false`: 1×1 conv.
    public var useLinearProjection: Bool
    /// `norm_num_groups` and `norm_eps` of the resnets' and conv_norm_out's group norms
    public var normNumGroups: Int, normEps: Float
    /// The timestep embedding (`flip_sin_to_cos`, `freq_shift`, `time_embedding_dim`; `act_fn`
    /// must be SiLU, as in every SD UNet).
    public var timeEmbedding: UNetTimeEmbeddingConfig
    /// SDXL's `text_time` addition embedding (`addition_embed_type`), nil when absent: the
    /// forward pass then needs `UNetAdditionalConditioning`.
    public var additionEmbedding: UNetAdditionEmbeddingConfig?
    /// Padding of the stride-2 downsampling convs (`downsample_padding`).
    public var downsamplePadding: Int
    /// Output scale of the mid block's resnets (`mid_block_scale_factor`).
    public var midBlockScaleFactor: Float

    /// Decodes a parsed `config.json`.
    init(json c: ConfigJSON) throws {
        inChannels = try c.positiveInt("in_channels", default: 4)
        outChannels = try c.positiveInt("out_channels", default: 4)
        blockOutChannels = try c.ints("block_out_channels")
        let n = blockOutChannels.count
        guard n > 0, blockOutChannels.allSatisfy({ $0 > 0 }) else {
            throw ModelConfigError.invalidValue(file: c.file, field: "block_out_channels", reason: "must be a non-empty list of positive integers")
        }
        downBlockTypes = try c.strings("down_block_types").map {
            guard let k = UNetDownBlockKind(rawValue: $0) else { throw ModelConfigError.unsupported(file: c.file, field: "down_block_types", value: $0) }
            return k
        }
        upBlockTypes = try c.strings("up_block_types").map {
            guard let k = UNetUpBlockKind(rawValue: $0) else { throw ModelConfigError.unsupported(file: c.file, field: "up_block_types", value: $0) }
            return k
        }
        guard downBlockTypes.count == n, upBlockTypes.count == n else {
            throw ModelConfigError.invalidValue(file: c.file, field: "down_block_types", reason: "down/up block type counts must equal len(block_out_channels) = \(n)")
        }
        layersPerBlock = c.has("layers_per_block") ? try c.intOrList("layers_per_block", count: n) : Array(repeating: 2, count: n)
        // Read before the per-layer transformer depths, which are laid out by it.
        if let bad = layersPerBlock.first(where: { $0 < 1 || $0 > 64 }) {
            throw ModelConfigError.invalidValue(file: c.file, field: "layers_per_block", reason: "\(bad) is outside 1…64")
        }
        // diffusers UNet2DConditionModel.__init__: `num_attention_heads = num_attention_heads or attention_head_dim`.
        let headsKey = c.has("num_attention_heads") ? "num_attention_heads" : "attention_head_dim"
        numAttentionHeads = c.has(headsKey) ? try c.intOrList(headsKey, count: n) : Array(repeating: 8, count: n)
        let depths = try UNetTransformerLayers(c, layersPerBlock: layersPerBlock)
        transformerLayersPerBlock = depths.down
        upTransformerLayersPerBlock = depths.up
        midTransformerLayers = depths.mid
        // diffusers' default is UNetMidBlock2DCrossAttn when the key is absent; an explicit null
        // means no mid block (ConfigJSON reads null as absent, so look at the raw value).
        if c.object["mid_block_type"] is NSNull {
            midBlockType = .absent
        } else {
            let mid = try c.string("mid_block_type", default: UNetMidBlockKind.crossAttention.rawValue)
            guard let kind = UNetMidBlockKind(rawValue: mid), kind != .absent else {
                throw ModelConfigError.unsupported(file: c.file, field: "mid_block_type", value: mid)
            }
            midBlockType = kind
        }
        crossAttentionDim = try c.positiveInt("cross_attention_dim", default: 1280)
        useLinearProjection = try c.bool("use_linear_projection", default: false)
        normNumGroups = try c.positiveInt("norm_num_groups", default: 32)
        normEps = Float(try c.double("norm_eps", default: 1e-5))
        timeEmbedding = try UNetTimeEmbeddingConfig(json: c, firstBlockChannels: blockOutChannels[0])
        additionEmbedding = try UNetAdditionEmbeddingConfig.decode(c)
        centerInputSample = try c.bool("center_input_sample", default: false)
        downsamplePadding = try c.int("downsample_padding", default: 1)
        midBlockScaleFactor = Float(try c.double("mid_block_scale_factor", default: 1))
        sampleSize = c.has("sample_size") ? try c.int("sample_size") : nil

        for (i, (ch, h)) in zip(blockOutChannels, numAttentionHeads).enumerated() where h <= 0 || ch % h != 0 {
            throw ModelConfigError.invalidValue(file: c.file, field: headsKey, reason: "block \(i): \(ch) channels are not divisible by \(h) heads")
        }
        for ch in blockOutChannels where ch % normNumGroups != 0 {
            throw ModelConfigError.invalidValue(file: c.file, field: "norm_num_groups", reason: "\(ch) channels are not divisible by \(normNumGroups) groups")
        }
        // Options that would change the graph; refuse rather than compute something else.
        try c.requireAbsentOr("class_embed_type")
        try c.requireAbsentOr("encoder_hid_dim_type")
        // diffusers turns a set encoder_hid_dim without a type into a "text_proj" projection.
        if c.has("encoder_hid_dim") {
            throw ModelConfigError.unsupported(file: c.file, field: "encoder_hid_dim", value: "\(c.object["encoder_hid_dim"] ?? "")")
        }
        if try c.bool("mid_block_only_cross_attention", default: false) {
            throw ModelConfigError.unsupported(file: c.file, field: "mid_block_only_cross_attention", value: "true")
        }
        try c.requireAbsentOr("cross_attention_norm")
        try c.requireAbsentOr("resnet_time_scale_shift", ["default"])
        try c.requireAbsentOr("attention_type", ["default"])
        if try c.bool("dual_cross_attention", default: false) {
            throw ModelConfigError.unsupported(file: c.file, field: "dual_cross_attention", value: "true")
        }
        if c.has("only_cross_attention"), (c.object["only_cross_attention"] as? Bool) != false {
            throw ModelConfigError.unsupported(file: c.file, field: "only_cross_attention", value: "\(c.object["only_cross_attention"] ?? "")")
        }
        for key in ["conv_in_kernel", "conv_out_kernel"] where try c.int(key, default: 3) != 3 {
            throw ModelConfigError.unsupported(file: c.file, field: key, value: "\(try c.int(key))")
        }
        if try c.double("resnet_out_scale_factor", default: 1) != 1 {
            throw ModelConfigError.unsupported(file: c.file, field: "resnet_out_scale_factor", value: "\(try c.double("resnet_out_scale_factor"))")
        }
        // `upcast_attention` only matters for fp16 in PyTorch; everything here is fp32.
    }

    /// Reads `unet/config.json`.
    public init(contentsOf url: URL) throws { try self.init(json: ConfigJSON(url: url)) }

    /// The SD 1.5 UNet (runwayml/stable-diffusion-v1-5 `unet/config.json`).
    public static var sd15: UNetConfig {
        // Built from the same decoder as files, so it cannot drift from it.
        let json: [String: Any] = [
            "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 768, "attention_head_dim": 8,
            "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
            "layers_per_block": 2, "norm_num_groups": 32, "sample_size": 64,
        ]
        return builtInConfig { try UNetConfig(json: ConfigJSON(file: "<sd15>", object: json)) }
    }

    /// The SD 2.1 UNet (stabilityai/stable-diffusion-2-1 `unet/config.json`).
    public static var sd21: UNetConfig {
        let json: [String: Any] = [
            "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 1024, "attention_head_dim": [5, 10, 20, 20],
            "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
            "layers_per_block": 2, "norm_num_groups": 32, "use_linear_projection": true, "sample_size": 96,
        ]
        return builtInConfig { try UNetConfig(json: ConfigJSON(file: "<sd21>", object: json)) }
    }

    /// The SDXL 1.0 UNet (stabilityai/stable-diffusion-xl-base-1.0 `unet/config.json`;
    /// SDXL-Lightning and Hyper-SD checkpoints share it).
    public static var sdxl: UNetConfig { sdxlFamily(name: "sdxl", sampleSize: 128) }

    /// SDXL-Turbo (stabilityai/sdxl-turbo): the SDXL UNet trained at 512², `sample_size` 64.
    public static var sdxlTurbo: UNetConfig { sdxlFamily(name: "sdxl-turbo", sampleSize: 64) }

    /// Segmind SSD-1B (segmind/SSD-1B `unet/config.json`): SDXL with 2 and 4 transformer layers
    /// in the down blocks, up blocks of [4, 4, 10] and [2, 1, 1] layers, and a mid block of one
    /// resnet (`UNetMidBlock2D`).
    public static var ssd1b: UNetConfig {
        sdxlFamily(name: "ssd-1b", sampleSize: 128, overrides: [
            "transformer_layers_per_block": [1, 2, 4],
            "reverse_transformer_layers_per_block": [[4, 4, 10], [2, 1, 1], 1] as [Any],
            "mid_block_type": "UNetMidBlock2D",
        ])
    }

    /// Segmind Vega (segmind/Segmind-Vega `unet/config.json`): SDXL with 1 and 2 transformer
    /// layers per level, the same mirrored in the up blocks, and a one-resnet mid block.
    public static var vega: UNetConfig {
        sdxlFamily(name: "vega", sampleSize: 128, overrides: [
            "transformer_layers_per_block": [1, 1, 2],
            "reverse_transformer_layers_per_block": [[2, 2, 2], [1, 1, 1], 1] as [Any],
            "mid_block_type": "UNetMidBlock2D",
        ])
    }

    /// The SDXL base `unet/config.json` keys that change the graph, with `overrides`.
    private static func sdxlFamily(name: String, sampleSize: Int, overrides: [String: Any] = [:]) -> UNetConfig {
        var json: [String: Any] = [
            "block_out_channels": [320, 640, 1280], "cross_attention_dim": 2048, "attention_head_dim": [5, 10, 20],
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            "layers_per_block": 2, "norm_num_groups": 32, "use_linear_projection": true, "sample_size": sampleSize,
            "transformer_layers_per_block": [1, 2, 10], "mid_block_type": "UNetMidBlock2DCrossAttn",
            "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
            "projection_class_embeddings_input_dim": 2816, "addition_embed_type_num_heads": 64,
        ]
        json.merge(overrides) { $1 }
        return builtInConfig { try UNetConfig(json: ConfigJSON(file: "<\(name)>", object: json)) }
    }
}
