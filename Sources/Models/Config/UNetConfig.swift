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

/// Activation named by a config's `act_fn` / `hidden_act`.
public enum ActivationKind: String, Sendable {
    case silu, gelu
    case quickGELU = "quick_gelu"
}

/// Architecture of a diffusers `UNet2DConditionModel`, read from `unet/config.json`.
/// Only the positional-timestep, text-conditioned SD 1.x / 2.x family is supported; options
/// that change the graph beyond that (class / addition embeddings, scale-shift norms …) are
/// rejected with `ModelConfigError.unsupported` instead of being silently ignored.
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
    /// Transformer layers per down block (`transformer_layers_per_block`).
    public var transformerLayersPerBlock: [Int]
    /// `cross_attention_dim`: width of the text states attended to
    public var crossAttentionDim: Int
    /// `true`: Transformer2DModel's proj_in/proj_out are Linear (SD 2.x); `false`: 1×1 conv.
    public var useLinearProjection: Bool
    /// `norm_num_groups` and `norm_eps` of the resnets' and conv_norm_out's group norms
    public var normNumGroups: Int, normEps: Float
    /// The timestep embedding (`flip_sin_to_cos`, `freq_shift`, `time_embedding_dim`; `act_fn`
    /// must be SiLU, as in every SD UNet).
    public var timeEmbedding: UNetTimeEmbeddingConfig
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
        // diffusers UNet2DConditionModel.__init__: `num_attention_heads = num_attention_heads or attention_head_dim`.
        let headsKey = c.has("num_attention_heads") ? "num_attention_heads" : "attention_head_dim"
        numAttentionHeads = c.has(headsKey) ? try c.intOrList(headsKey, count: n) : Array(repeating: 8, count: n)
        transformerLayersPerBlock = c.has("transformer_layers_per_block")
            ? try c.intOrList("transformer_layers_per_block", count: n) : Array(repeating: 1, count: n)
        crossAttentionDim = try c.positiveInt("cross_attention_dim", default: 1280)
        useLinearProjection = try c.bool("use_linear_projection", default: false)
        normNumGroups = try c.positiveInt("norm_num_groups", default: 32)
        normEps = Float(try c.double("norm_eps", default: 1e-5))
        timeEmbedding = try UNetTimeEmbeddingConfig(json: c, firstBlockChannels: blockOutChannels[0])
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
        try c.requireAbsentOr("addition_embed_type")
        try c.requireAbsentOr("encoder_hid_dim_type")
        try c.requireAbsentOr("cross_attention_norm")
        try c.requireAbsentOr("reverse_transformer_layers_per_block")
        try c.requireAbsentOr("resnet_time_scale_shift", ["default"])
        try c.requireAbsentOr("mid_block_type", ["UNetMidBlock2DCrossAttn"])
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
}
