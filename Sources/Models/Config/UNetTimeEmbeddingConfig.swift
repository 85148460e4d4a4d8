import Foundation

/// How a `UNet2DConditionModel` embeds its timestep: diffusers' `Timesteps` (`time_proj`)
/// and `TimestepEmbedding` (`time_embedding`), read from `unet/config.json`.
public struct UNetTimeEmbeddingConfig: Sendable, Equatable {
    /// `flip_sin_to_cos`: cosines first in the sinusoid
    public var flipSinToCos: Bool
    /// `freq_shift` (`downscale_freq_shift` of `Timesteps`)
    public var freqShift: Float
    /// `time_embedding_dim`: width of the embedding every resnet reads
    /// (default 4 × `block_out_channels[0]`)
    public var dimension: Int

    init(json c: ConfigJSON, firstBlockChannels: Int) throws {
        flipSinToCos = try c.bool("flip_sin_to_cos", default: true)
        freqShift = Float(try c.double("freq_shift", default: 0))
        let act = try c.string("act_fn", default: "silu")
        guard act == "silu" || act == "swish" else { throw ModelConfigError.unsupported(file: c.file, field: "act_fn", value: act) }
        dimension = try c.positiveInt("time_embedding_dim", default: firstBlockChannels * 4)
        try c.requireAbsentOr("timestep_post_act")
        try c.requireAbsentOr("time_embedding_act_fn")
        try c.requireAbsentOr("time_cond_proj_dim")
        try c.requireAbsentOr("time_embedding_type", ["positional"])
    }
}
