import Kernels

/// `Encoder` of `AutoencoderKL`: conv_in → DownEncoderBlock2D × n (resnets, then a stride-2
/// conv with (0, 1, 0, 1) padding except in the last) → mid block → GroupNorm, SiLU → conv_out
/// to 2 × latent channels (mean, log-variance) → quant_conv.
struct VAEEncoderWeights: @unchecked Sendable {
    /// encoder.conv_in: [block0, inChannels, 3, 3]
    var convIn: Conv2DWeights
    /// encoder.down_blocks.i.resnets.j
    var downResnets: [[ResnetBlock]]
    /// encoder.down_blocks.i.downsamplers.0.conv: [ch_i, ch_i, 3, 3] (nil for the last block)
    var downsamplers: [Conv2DWeights?]
    var mid: VAEMidBlock
    /// encoder.conv_norm_out: [block_last]
    var convNormOut: NormWeights
    /// encoder.conv_out: [2·latent, block_last, 3, 3]
    var convOut: Conv2DWeights
    /// quant_conv: [2·latent, 2·latent, 1, 1]
    var quantConv: Conv2DWeights?

    init(config c: VAEConfig, source s: WeightSource) throws {
        let ch = c.blockOutChannels, g = c.normNumGroups, eps = c.normEps
        convIn = try Conv2DWeights(s, "encoder.conv_in", in: c.inChannels, out: ch[0], kernel: 3)
        var resnets: [[ResnetBlock]] = []
        var downs: [Conv2DWeights?] = []
        var out = ch[0]
        for i in 0..<ch.count {
            let inC = out
            out = ch[i]
            resnets.append(try (0..<c.layersPerBlock).map {
                try ResnetBlock(s, "encoder.down_blocks.\(i).resnets.\($0)", in: $0 == 0 ? inC : out, out: out,
                                timeEmbedding: nil, groups: g, eps: eps)
            })
            downs.append(i < ch.count - 1
                         ? try Conv2DWeights(s, "encoder.down_blocks.\(i).downsamplers.0.conv", in: out, out: out, kernel: 3) : nil)
        }
        downResnets = resnets
        downsamplers = downs
        mid = try VAEMidBlock(s, "encoder.mid_block", channels: out, groups: g, eps: eps, withAttention: c.midBlockAddAttention)
        convNormOut = try NormWeights(s, "encoder.conv_norm_out", channels: out)
        convOut = try Conv2DWeights(s, "encoder.conv_out", in: out, out: 2 * c.latentChannels, kernel: 3)
        quantConv = c.useQuantConv ? try Conv2DWeights(s, "quant_conv", in: 2 * c.latentChannels, out: 2 * c.latentChannels, kernel: 1) : nil
    }
}

/// `Decoder` of `AutoencoderKL`: post_quant_conv → conv_in → mid block → UpDecoderBlock2D × n
/// (layers_per_block + 1 resnets, then nearest-2× + 3×3 conv except in the last) →
/// GroupNorm, SiLU → conv_out.
struct VAEDecoderWeights: @unchecked Sendable {
    /// post_quant_conv: [latent, latent, 1, 1]
    var postQuantConv: Conv2DWeights?
    /// decoder.conv_in: [block_last, latent, 3, 3]
    var convIn: Conv2DWeights
    var mid: VAEMidBlock
    /// decoder.up_blocks.i.resnets.j (i over reversed block_out_channels)
    var upResnets: [[ResnetBlock]]
    /// decoder.up_blocks.i.upsamplers.0.conv: [ch, ch, 3, 3] (nil for the last block)
    var upsamplers: [Conv2DWeights?]
    /// decoder.conv_norm_out: [block0]
    var convNormOut: NormWeights
    /// decoder.conv_out: [outChannels, block0, 3, 3]
    var convOut: Conv2DWeights

    init(config c: VAEConfig, source s: WeightSource) throws {
        let rch = Array(c.blockOutChannels.reversed()), g = c.normNumGroups, eps = c.normEps
        let l = c.latentChannels
        postQuantConv = c.usePostQuantConv ? try Conv2DWeights(s, "post_quant_conv", in: l, out: l, kernel: 1) : nil
        convIn = try Conv2DWeights(s, "decoder.conv_in", in: l, out: rch[0], kernel: 3)
        mid = try VAEMidBlock(s, "decoder.mid_block", channels: rch[0], groups: g, eps: eps, withAttention: c.midBlockAddAttention)
        var resnets: [[ResnetBlock]] = []
        var ups: [Conv2DWeights?] = []
        var out = rch[0]
        for i in 0..<rch.count {
            let prev = out
            out = rch[i]
            resnets.append(try (0..<(c.layersPerBlock + 1)).map {
                try ResnetBlock(s, "decoder.up_blocks.\(i).resnets.\($0)", in: $0 == 0 ? prev : out, out: out,
                                timeEmbedding: nil, groups: g, eps: eps)
            })
            ups.append(i < rch.count - 1
                       ? try Conv2DWeights(s, "decoder.up_blocks.\(i).upsamplers.0.conv", in: out, out: out, kernel: 3) : nil)
        }
        upResnets = resnets
        upsamplers = ups
        convNormOut = try NormWeights(s, "decoder.conv_norm_out", channels: out)
        convOut = try Conv2DWeights(s, "decoder.conv_out", in: out, out: c.outChannels, kernel: 3)
    }
}
