import Kernels

/// The UNet's mid block at the lowest resolution, as diffusers' `get_mid_block` builds it for
/// `UNet2DConditionModel`: `UNetMidBlock2DCrossAttn` (resnet, then (transformer, resnet)
/// pairs; SD 1.x/2.x, SDXL) or `UNetMidBlock2D` with `num_layers=0, add_attention=False`
/// (one resnet; SSD-1B, Segmind Vega). The resnets divide their output by
/// `mid_block_scale_factor`. `mid_block_type: null` has no mid block (`UNetWeights.midBlock` nil).
struct UNetMidBlock: @unchecked Sendable {
    /// Module path, "mid_block": the weights' prefix and the trace name.
    let name = "mid_block"
    /// One more than `attentions`.
    var resnets: [ResnetBlock]
    var attentions: [SpatialTransformer]

    /// The mid block of `c` (nil for `mid_block_type: null`), at the width of the last down block.
    init?(_ s: WeightSource, config c: UNetConfig) throws {
        let last = c.blockOutChannels.count - 1, top = c.blockOutChannels[last], p = name
        let pairs: Int
        switch c.midBlockType {
        case .absent: return nil
        case .resnet: pairs = 0
        case .crossAttention: pairs = 1
        }
        // Every resnet is read before the transformer (the order RandomWeightSource seeds by).
        resnets = try (0...pairs).map {
            try ResnetBlock(s, "\(p).resnets.\($0)", in: top, out: top, timeEmbedding: c.timeEmbedding.dimension,
                            groups: c.normNumGroups, eps: c.normEps, outputScale: c.midBlockScaleFactor)
        }
        attentions = try (0..<pairs).map {
            try SpatialTransformer(s, "\(p).attentions.\($0)", channels: top, heads: c.numAttentionHeads[last],
                                   depth: c.midTransformerLayers, crossAttentionDim: c.crossAttentionDim, groups: c.normNumGroups)
        }
    }

    /// - Parameters:
    ///   - x: [N, C, H, W]
    ///   - timeEmbedding: SiLU(temb), [N, timeEmbeddingDim]
    ///   - context: [N, L, crossAttentionDim]
    /// - Returns: [N, C, H, W] in the arena; traced as `name`.
    func callAsFunction(_ x: Tensor, timeEmbedding emb: Tensor, context: Tensor,
                        arena: Arena, pool: ThreadPool, trace: ((String, Tensor) -> Void)?) -> Tensor {
        let n = x.shape[0], hh = x.shape[2], ww = x.shape[3]
        let first = arena.tensor([n, resnets[0].outChannels, hh, ww])
        resnets[0](x, timeEmbedding: emb, output: first, arena: arena, pool: pool)
        var cur = first
        for (k, attn) in attentions.enumerated() {
            let t = arena.tensor(cur.shape)
            attn(cur, context: context, output: t, arena: arena, pool: pool)
            let r = arena.tensor(cur.shape)
            resnets[k + 1](t, timeEmbedding: emb, output: r, arena: arena, pool: pool)
            cur = r
        }
        trace?(name, cur)
        return cur
    }

    /// Floating-point operations on [n, C, h, w].
    func flops(n: Int, h: Int, w: Int, contextLength lc: Int) -> Double {
        resnets.reduce(0) { $0 + $1.flops(n: n, h: h, w: w) }
            + attentions.reduce(0) { $0 + $1.flops(n: n, hw: h * w, contextLength: lc) }
    }
}
