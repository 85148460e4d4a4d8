import Kernels

/// All parameters of a `UNet2DConditionModel`, built from its config; each block builds
/// its own (UNetTimeEmbedding, UNetDownBlock, UNetMidBlock, UNetUpBlock).
public struct UNetWeights: @unchecked Sendable {
    /// conv_in: [block0, inChannels, 3, 3]
    var convIn: Conv2DWeights
    /// time_embedding.linear_1 / linear_2
    var timeEmbedding: UNetTimeEmbedding
    /// add_embedding (SDXL's `text_time`), nil without `addition_embed_type`
    var additionEmbedding: UNetAdditionEmbedding?
    var downBlocks: [UNetDownBlock]
    /// nil for `mid_block_type: null`
    var midBlock: UNetMidBlock?
    var upBlocks: [UNetUpBlock]
    /// conv_norm_out: GroupNorm [block0]
    var convNormOut: NormWeights
    /// conv_out: [outChannels, block0, 3, 3]
    var convOut: Conv2DWeights
    /// Every tensor above by its diffusers name (LoRA merging writes through it).
    let parameters: ParameterRegistry

    /// Reads the tensors in diffusers' module order (`RandomWeightSource` seeds by that order).
    init(config c: UNetConfig, source: WeightSource) throws {
        let s = RegisteringWeightSource(source)
        parameters = s.registry
        let ch0 = c.blockOutChannels[0], levels = c.blockOutChannels.indices
        convIn = try Conv2DWeights(s, "conv_in", in: c.inChannels, out: ch0, kernel: 3)
        timeEmbedding = try UNetTimeEmbedding(s, config: c)
        additionEmbedding = try c.additionEmbedding.map { try UNetAdditionEmbedding(s, config: c, addition: $0) }
        downBlocks = try levels.map { try UNetDownBlock(s, config: c, index: $0) }
        midBlock = try UNetMidBlock(s, config: c)
        upBlocks = try levels.map { try UNetUpBlock(s, config: c, index: $0) }
        convNormOut = try NormWeights(s, "conv_norm_out", channels: ch0)
        convOut = try Conv2DWeights(s, "conv_out", in: ch0, out: c.outChannels, kernel: 3)
        try s.finish()
    }
}
