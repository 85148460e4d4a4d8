import Kernels

/// One down block: `CrossAttnDownBlock2D` (resnet → transformer per layer) or `DownBlock2D`
/// (resnets only), then an optional stride-2 3×3 conv (`Downsample2D`).
struct UNetDownBlock: @unchecked Sendable {
    var resnets: [ResnetBlock]
    /// One per resnet for cross-attention blocks, empty otherwise.
    var attentions: [SpatialTransformer]
    /// downsamplers.0.conv: [out, out, 3, 3], stride 2
    var downsampler: Conv2DWeights?
    let downsamplePadding: Int
}

/// One up block: `CrossAttnUpBlock2D` / `UpBlock2D`; each resnet first concatenates the next
/// skip tensor on the channel axis; then an optional nearest-2× upsample + 3×3 conv.
struct UNetUpBlock: @unchecked Sendable {
    var resnets: [ResnetBlock]
    var attentions: [SpatialTransformer]
    /// upsamplers.0.conv: [out, out, 3, 3]
    var upsampler: Conv2DWeights?
}

/// `UNetMidBlock2DCrossAttn`: resnet, then (transformer, resnet) pairs.
struct UNetMidBlock: @unchecked Sendable {
    var resnets: [ResnetBlock]
    var attentions: [SpatialTransformer]
}

/// All parameters of a `UNet2DConditionModel`, built from its config.
public struct UNetWeights: @unchecked Sendable {
    /// conv_in: [block0, inChannels, 3, 3]
    var convIn: Conv2DWeights
    /// time_embedding.linear_1: [timeEmbeddingDim, block0]
    var timeLinear1: LinearWeights
    /// time_embedding.linear_2: [timeEmbeddingDim, timeEmbeddingDim]
    var timeLinear2: LinearWeights
    var downBlocks: [UNetDownBlock]
    var midBlock: UNetMidBlock
    var upBlocks: [UNetUpBlock]
    /// conv_norm_out: GroupNorm [block0]
    var convNormOut: NormWeights
    /// conv_out: [outChannels, block0, 3, 3]
    var convOut: Conv2DWeights

    // swiftlint:disable:next function_body_length
    init(config c: UNetConfig, source s: WeightSource) throws {
        let ch = c.blockOutChannels, n = ch.count
        let temb = c.timeEmbeddingDim, groups = c.normNumGroups, eps = c.normEps
        convIn = try Conv2DWeights(s, "conv_in", in: c.inChannels, out: ch[0], kernel: 3)
        timeLinear1 = try LinearWeights(s, "time_embedding.linear_1", in: ch[0], out: temb)
        timeLinear2 = try LinearWeights(s, "time_embedding.linear_2", in: temb, out: temb)

        func transformer(_ p: String, _ channels: Int, heads: Int, depth: Int) throws -> SpatialTransformer {
            try SpatialTransformer(s, p, channels: channels, heads: heads, depth: depth,
                                   crossAttentionDim: c.crossAttentionDim, groups: groups)
        }

        var down: [UNetDownBlock] = []
        var outChannels = ch[0]
        for i in 0..<n {
            let inC = outChannels
            outChannels = ch[i]
            let p = "down_blocks.\(i)"
            var resnets: [ResnetBlock] = []
            var attns: [SpatialTransformer] = []
            for j in 0..<c.layersPerBlock[i] {
                resnets.append(try ResnetBlock(s, "\(p).resnets.\(j)", in: j == 0 ? inC : outChannels, out: outChannels,
                                               timeEmbedding: temb, groups: groups, eps: eps))
                if c.downBlockTypes[i] == .crossAttention {
                    attns.append(try transformer("\(p).attentions.\(j)", outChannels, heads: c.numAttentionHeads[i],
                                                 depth: c.transformerLayersPerBlock[i]))
                }
            }
            let ds = i < n - 1 ? try Conv2DWeights(s, "\(p).downsamplers.0.conv", in: outChannels, out: outChannels, kernel: 3) : nil
            down.append(UNetDownBlock(resnets: resnets, attentions: attns, downsampler: ds, downsamplePadding: c.downsamplePadding))
        }
        downBlocks = down

        let top = ch[n - 1]
        midBlock = UNetMidBlock(
            resnets: try (0..<2).map {
                try ResnetBlock(s, "mid_block.resnets.\($0)", in: top, out: top, timeEmbedding: temb,
                                groups: groups, eps: eps, outputScale: c.midBlockScaleFactor)
            },
            attentions: [try transformer("mid_block.attentions.0", top, heads: c.numAttentionHeads[n - 1],
                                         depth: c.transformerLayersPerBlock[n - 1])])

        // Up path: diffusers walks reversed(block_out_channels); each block has
        // layers_per_block + 1 resnets; resnet j takes prev_output (j = 0) or out channels, plus
        // the skip's channels: `in_channels` (the next-lower block's width) for the last one.
        let rch = Array(ch.reversed())
        let rLayers = Array(c.layersPerBlock.reversed())
        let rHeads = Array(c.numAttentionHeads.reversed())
        let rDepth = Array(c.transformerLayersPerBlock.reversed())
        var up: [UNetUpBlock] = []
        var prevOut = rch[0]
        for i in 0..<n {
            let out = rch[i]
            let skipIn = rch[min(i + 1, n - 1)]
            let p = "up_blocks.\(i)"
            let layers = rLayers[i] + 1
            var resnets: [ResnetBlock] = []
            var attns: [SpatialTransformer] = []
            for j in 0..<layers {
                let skip = j == layers - 1 ? skipIn : out
                let resIn = j == 0 ? prevOut : out
                resnets.append(try ResnetBlock(s, "\(p).resnets.\(j)", in: resIn + skip, out: out,
                                               timeEmbedding: temb, groups: groups, eps: eps))
                if c.upBlockTypes[i] == .crossAttention {
                    attns.append(try transformer("\(p).attentions.\(j)", out, heads: rHeads[i], depth: rDepth[i]))
                }
            }
            let us = i < n - 1 ? try Conv2DWeights(s, "\(p).upsamplers.0.conv", in: out, out: out, kernel: 3) : nil
            up.append(UNetUpBlock(resnets: resnets, attentions: attns, upsampler: us))
            prevOut = out
        }
        upBlocks = up
        convNormOut = try NormWeights(s, "conv_norm_out", channels: ch[0])
        convOut = try Conv2DWeights(s, "conv_out", in: ch[0], out: c.outChannels, kernel: 3)
        try s.finish()
    }
}
