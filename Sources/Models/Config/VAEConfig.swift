import Foundation

/// Architecture of a diffusers `AutoencoderKL`, read from `vae/config.json`.
/// Encoder: conv_in → DownEncoderBlock2D × n → mid block → norm/SiLU/conv_out (2 × latent);
/// decoder mirrors it with UpDecoderBlock2D (layers_per_block + 1 resnets each).
public struct VAEConfig: Sendable, Equatable {
    /// `in_channels`: image channels
    public var inChannels: Int
    /// `out_channels`: image channels decoded
    public var outChannels: Int
    /// `latent_channels`
    public var latentChannels: Int
    /// `block_out_channels`
    public var blockOutChannels: [Int]
    /// `layers_per_block` (decoder blocks have one more)
    public var layersPerBlock: Int
    /// `norm_num_groups`
    public var normNumGroups: Int
    /// Latents are `scaling_factor × (z − shift_factor)` (diffusers pipelines divide by it before decode).
    public var scalingFactor: Float
    /// `shift_factor` (null = 0)
    public var shiftFactor: Float
    /// `use_quant_conv`: encoder output goes through quant_conv
    public var useQuantConv: Bool
    /// `use_post_quant_conv`: decoder input goes through post_quant_conv
    public var usePostQuantConv: Bool
    /// Whether the mid blocks hold their single-head attention (`mid_block_add_attention`).
    public var midBlockAddAttention: Bool
    /// diffusers' `Encoder` / `Decoder` use a fixed eps of 1e-6 in every norm.
    public var normEps: Float { 1e-6 }
    /// Pixels per latent along each side: 2^(number of blocks − 1).
    public var downscaleFactor: Int { 1 << (blockOutChannels.count - 1) }

    init(json c: ConfigJSON) throws {
        inChannels = try c.positiveInt("in_channels", default: 3)
        outChannels = try c.positiveInt("out_channels", default: 3)
        latentChannels = try c.positiveInt("latent_channels", default: 4)
        blockOutChannels = try c.ints("block_out_channels")
        guard !blockOutChannels.isEmpty, blockOutChannels.allSatisfy({ $0 > 0 }) else {
            throw ModelConfigError.invalidValue(file: c.file, field: "block_out_channels", reason: "must be a non-empty list of positive integers")
        }
        layersPerBlock = try c.positiveInt("layers_per_block", default: 1)
        normNumGroups = try c.positiveInt("norm_num_groups", default: 32)
        for ch in blockOutChannels where ch % normNumGroups != 0 {
            throw ModelConfigError.invalidValue(file: c.file, field: "norm_num_groups", reason: "\(ch) channels are not divisible by \(normNumGroups) groups")
        }
        scalingFactor = Float(try c.double("scaling_factor", default: 0.18215))
        shiftFactor = Float(try c.double("shift_factor", default: 0))
        useQuantConv = try c.bool("use_quant_conv", default: true)
        usePostQuantConv = try c.bool("use_post_quant_conv", default: true)
        midBlockAddAttention = try c.bool("mid_block_add_attention", default: true)
        let act = try c.string("act_fn", default: "silu")
        guard act == "silu" || act == "swish" else { throw ModelConfigError.unsupported(file: c.file, field: "act_fn", value: act) }
        let n = blockOutChannels.count
        if c.has("down_block_types") {
            let t = try c.strings("down_block_types")
            guard t.count == n else { throw ModelConfigError.invalidValue(file: c.file, field: "down_block_types", reason: "expected \(n) entries") }
            for s in t where s != "DownEncoderBlock2D" { throw ModelConfigError.unsupported(file: c.file, field: "down_block_types", value: s) }
        }
        if c.has("up_block_types") {
            let t = try c.strings("up_block_types")
            guard t.count == n else { throw ModelConfigError.invalidValue(file: c.file, field: "up_block_types", reason: "expected \(n) entries") }
            for s in t where s != "UpDecoderBlock2D" { throw ModelConfigError.unsupported(file: c.file, field: "up_block_types", value: s) }
        }
        try c.requireAbsentOr("latents_mean")
        try c.requireAbsentOr("latents_std")
    }

    /// Reads `vae/config.json`.
    public init(contentsOf url: URL) throws { try self.init(json: ConfigJSON(url: url)) }

    /// The SD 1.x / 2.x VAE (`vae/config.json` of stable-diffusion-v1-5).
    public static var sd: VAEConfig {
        let json: [String: Any] = ["block_out_channels": [128, 256, 512, 512], "layers_per_block": 2,
                                   "latent_channels": 4, "norm_num_groups": 32, "scaling_factor": 0.18215]
        return builtInConfig { try VAEConfig(json: ConfigJSON(file: "<sd-vae>", object: json)) }
    }
}
