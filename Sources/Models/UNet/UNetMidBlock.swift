import Kernels

/// diffusers `UNetMidBlock2DCrossAttn` at the lowest resolution: resnet, then
/// (transformer, resnet) pairs. The resnets divide their output by `mid_block_scale_factor`.
struct UNetMidBlock: @unchecked Sendable {
    /// Module path, "mid_block": the weights' prefix and the trace name.
    let name = "mid_block"
    /// One more than `attentions`.
    var resnets: [ResnetBlock]
    var attentions: [SpatialTransformer]

    /// The mid block of `c`, at the width of the last down block.
    init(_ s: WeightSource, config c: UNetConfig) throws {
        let last = c.blockOutChannels.count - 1, top = c.blockOutChannels[last], p = name
        // Both resnets are read before the transformer (the order RandomWeightSource seeds by).
        resnets = try (0..<2).map {
            try ResnetBlock(s, "\(p).resnets.\($0)", in: top, out: top, timeEmbedding: c.timeEmbedding.dimension,
                            groups: c.normNumGroups, eps: c.normEps, outputScale: c.midBlockScaleFactor)
        }
        attentions = [try SpatialTransformer(s, "\(p).attentions.0", channels: top, heads: c.numAttentionHeads[last],
                                             depth: c.transformerLayersPerBlock[last],
                                             crossAttentionDim: c.crossAttentionDim, groups: c.normNumGroups)]
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
