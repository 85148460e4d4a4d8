import Foundation

/// Architecture of a diffusers `AutoencoderTiny` (TAESD, TAESDXL), read from its
/// `config.json`. Encoder (`EncoderTiny`): per stage a 3×3 conv (the first from the image,
/// the others stride 2 without bias) and `num_encoder_blocks[i]` `AutoencoderTinyBlock`s,
/// then a 3×3 conv to the latent channels. Decoder (`DecoderTiny`): tanh clamp, 3×3 conv +
/// ReLU, per stage `num_decoder_blocks[i]` blocks, nearest 2× upsampling and a bias-free
/// 3×3 conv (the last stage: no upsampling, a biased conv to the image channels).
public struct TinyVAEConfig: Sendable, Equatable {
    /// `in_channels`: image channels the encoder reads
    public var inChannels: Int
    /// `out_channels`: image channels the decoder writes
    public var outChannels: Int
    /// `latent_channels`
    public var latentChannels: Int
    /// `encoder_block_out_channels` (one per stage; diffusers' layers only fit together when all are equal)
    public var encoderBlockOutChannels: [Int]
    /// `decoder_block_out_channels` (likewise)
    public var decoderBlockOutChannels: [Int]
    /// `num_encoder_blocks`: `AutoencoderTinyBlock`s per encoder stage
    public var numEncoderBlocks: [Int]
    /// `num_decoder_blocks`: `AutoencoderTinyBlock`s per decoder stage
    public var numDecoderBlocks: [Int]
    /// `latent_magnitude` and `latent_shift`: `AutoencoderTiny.scale_latents` maps raw latents
    /// to [0, 1] as `x / (2 · magnitude) + shift` (only its `forward` round trip uses them;
    /// `encode` / `decode` work on raw latents).
    public var latentMagnitude: Float
    /// `latent_shift`, see `latentMagnitude`.
    public var latentShift: Float
    /// `scaling_factor`: 1.0 for TAESD / TAESDXL, whose latents are the diffusion model's
    /// latents as they are (pipelines decode `latents / scaling_factor`).
    public var scalingFactor: Float
    /// `shift_factor` (null = 0)
    public var shiftFactor: Float

    /// Pixels per latent along each side: 2^(decoder stages − 1) (`upsampling_scaling_factor` 2).
    public var downscaleFactor: Int { 1 << (decoderBlockOutChannels.count - 1) }
    /// Pixels per latent of the encoder: 2^(encoder stages − 1) (one stride-2 conv per later stage).
    public var encoderDownscaleFactor: Int { 1 << (encoderBlockOutChannels.count - 1) }

    init(json c: ConfigJSON) throws {
        if let name = try c.optionalString("_class_name"), name != "AutoencoderTiny" {
            throw ModelConfigError.unsupported(file: c.file, field: "_class_name",
                                               value: "\(name) (a tiny autoencoder folder holds diffusers' AutoencoderTiny)")
        }
        inChannels = try c.positiveInt("in_channels", default: 3)
        outChannels = try c.positiveInt("out_channels", default: 3)
        latentChannels = try c.positiveInt("latent_channels", default: 4)
        func list(_ key: String, _ fallback: [Int], minimum: Int) throws -> [Int] {
            let values = c.has(key) ? try c.ints(key) : fallback
            guard (1...8).contains(values.count), values.allSatisfy({ $0 >= minimum }) else {
                throw ModelConfigError.invalidValue(file: c.file, field: key,
                                                    reason: "must be a list of 1 to 8 integers of at least \(minimum)")
            }
            return values
        }
        encoderBlockOutChannels = try list("encoder_block_out_channels", [64, 64, 64, 64], minimum: 1)
        decoderBlockOutChannels = try list("decoder_block_out_channels", [64, 64, 64, 64], minimum: 1)
        numEncoderBlocks = try list("num_encoder_blocks", [1, 3, 3, 3], minimum: 0)
        numDecoderBlocks = try list("num_decoder_blocks", [3, 3, 3, 1], minimum: 0)
        guard numEncoderBlocks.count == encoderBlockOutChannels.count else {
            throw ModelConfigError.invalidValue(file: c.file, field: "num_encoder_blocks",
                                                reason: "has \(numEncoderBlocks.count) entries, encoder_block_out_channels \(encoderBlockOutChannels.count)")
        }
        guard numDecoderBlocks.count == decoderBlockOutChannels.count else {
            throw ModelConfigError.invalidValue(file: c.file, field: "num_decoder_blocks",
                                                reason: "has \(numDecoderBlocks.count) entries, decoder_block_out_channels \(decoderBlockOutChannels.count)")
        }
        // EncoderTiny's stride-2 conv of stage i maps block_out_channels[i] → [i] and reads
        // stage i − 1's output; DecoderTiny's stage conv keeps stage i's width for stage i + 1.
        for (key, channels) in [("encoder_block_out_channels", encoderBlockOutChannels),
                                ("decoder_block_out_channels", decoderBlockOutChannels)]
            where Set(channels).count != 1 {
            throw ModelConfigError.invalidValue(file: c.file, field: key,
                                                reason: "\(channels): AutoencoderTiny's layers only fit together when every stage has the same width")
        }
        let act = try c.string("act_fn", default: "relu")
        guard act == "relu" else { throw ModelConfigError.unsupported(file: c.file, field: "act_fn", value: act) }
        let upsample = try c.string("upsample_fn", default: "nearest")
        guard upsample == "nearest" else { throw ModelConfigError.unsupported(file: c.file, field: "upsample_fn", value: upsample) }
        let factor = try c.int("upsampling_scaling_factor", default: 2)
        guard factor == 2 else { throw ModelConfigError.unsupported(file: c.file, field: "upsampling_scaling_factor", value: "\(factor)") }
        latentMagnitude = Float(try c.double("latent_magnitude", default: 3))
        latentShift = Float(try c.double("latent_shift", default: 0.5))
        scalingFactor = Float(try c.double("scaling_factor", default: 1))
        guard scalingFactor.isFinite, scalingFactor > 0 else {
            throw ModelConfigError.invalidValue(file: c.file, field: "scaling_factor", reason: "must be a positive number")
        }
        shiftFactor = Float(try c.double("shift_factor", default: 0))
    }

    /// Reads an `AutoencoderTiny` folder's `config.json`.
    public init(contentsOf url: URL) throws { try self.init(json: ConfigJSON(url: url)) }

    /// TAESD / TAESDXL (`madebyollin/taesd`, `madebyollin/taesdxl`): the same architecture,
    /// 64 channels, encoder stages of 1/3/3/3 blocks, decoder stages of 3/3/3/1; the two
    /// differ only in their weights.
    public static var taesd: TinyVAEConfig {
        builtInConfig { try TinyVAEConfig(json: ConfigJSON(file: "<taesd>", object: [:])) }
    }
}
