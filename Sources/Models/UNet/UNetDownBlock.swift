import Kernels

/// One down block of the UNet: diffusers `CrossAttnDownBlock2D` (resnet → transformer per
/// layer) or `DownBlock2D` (resnets only), then an optional stride-2 3×3 conv
/// (`Downsample2D`, every block but the last). Every layer's output and the downsampled
/// output are pushed on the skip stack that the up blocks pop.
struct UNetDownBlock: @unchecked Sendable {
    /// Module path, "down_blocks.i": the weights' prefix and the trace name.
    let name: String
    var resnets: [ResnetBlock]
    /// One per resnet for cross-attention blocks, empty otherwise.
    var attentions: [SpatialTransformer]
    /// downsamplers.0.conv: [out, out, 3, 3], stride 2
    var downsampler: Conv2DWeights?
    let downsamplePadding: Int

    /// Block `i` of `c.downBlockTypes`: it takes the previous block's width
    /// (`block_out_channels[i - 1]`, or [0] after conv_in) to `block_out_channels[i]`.
    init(_ s: WeightSource, config c: UNetConfig, index i: Int) throws {
        let ch = c.blockOutChannels
        let inC = ch[max(i - 1, 0)], outC = ch[i]
        name = "down_blocks.\(i)"
        resnets = []
        attentions = []
        for j in 0..<c.layersPerBlock[i] {
            resnets.append(try ResnetBlock(s, "\(name).resnets.\(j)", in: j == 0 ? inC : outC, out: outC,
                                           timeEmbedding: c.timeEmbedding.dimension, groups: c.normNumGroups, eps: c.normEps))
            if c.downBlockTypes[i] == .crossAttention {
                attentions.append(try SpatialTransformer(
                    s, "\(name).attentions.\(j)", channels: outC, heads: c.numAttentionHeads[i],
                    depth: c.transformerLayersPerBlock[i][j], crossAttentionDim: c.crossAttentionDim, groups: c.normNumGroups))
            }
        }
        downsampler = i < ch.count - 1
            ? try Conv2DWeights(s, "\(name).downsamplers.0.conv", in: outC, out: outC, kernel: 3) : nil
        downsamplePadding = c.downsamplePadding
    }

    /// Side of the downsampler's output for an input side `x`.
    func downsampled(_ x: Int) -> Int { (x + 2 * downsamplePadding - 3) / 2 + 1 }

    /// - Parameters:
    ///   - x: [N, in, H, W]
    ///   - timeEmbedding: SiLU(temb), [N, timeEmbeddingDim]
    ///   - context: [N, L, crossAttentionDim]
    ///   - skips: each layer's output and the downsampled output are appended
    /// - Returns: [N, out, H', W'] (H' = H without a downsampler), in the arena like every
    ///   tensor pushed on `skips`; traced as `name`.
    func callAsFunction(_ x: Tensor, timeEmbedding emb: Tensor, context: Tensor, skips: inout [Tensor],
                        arena: Arena, pool: ThreadPool, trace: ((String, Tensor) -> Void)?) -> Tensor {
        let n = x.shape[0], hh = x.shape[2], ww = x.shape[3]
        var cur = x
        for j in resnets.indices {
            cur = layer(j, cur, timeEmbedding: emb, context: context, arena: arena, pool: pool)
            skips.append(cur)
        }
        if let ds = downsampler {
            let d = arena.tensor([n, ds.outChannels, downsampled(hh), downsampled(ww)])
            conv2d(cur, weight: ds.weight, bias: ds.bias, stride: 2, padding: .symmetric(downsamplePadding),
                   output: d, pool: pool)
            cur = d
            skips.append(cur)
        }
        trace?(name, cur)
        return cur
    }

    /// DeepCache's shallow pass (`exist_block_number = 0` in DeepCache's `CrossAttnDownBlock2D`):
    /// layer 0 alone (resnet, then the transformer in the cross-attention kind), its output
    /// pushed on `skips` and returned; no later layer, no downsampler. Traced as "<name>.layer0".
    func firstLayer(_ x: Tensor, timeEmbedding emb: Tensor, context: Tensor, skips: inout [Tensor],
                    arena: Arena, pool: ThreadPool, trace: ((String, Tensor) -> Void)?) -> Tensor {
        let cur = layer(0, x, timeEmbedding: emb, context: context, arena: arena, pool: pool)
        skips.append(cur)
        trace?("\(name).layer0", cur)
        return cur
    }

    /// Layer `j`: resnet `j` on `x`, then transformer `j` in the cross-attention kind; the
    /// result in the arena.
    private func layer(_ j: Int, _ x: Tensor, timeEmbedding emb: Tensor, context: Tensor,
                       arena: Arena, pool: ThreadPool) -> Tensor {
        let resnet = resnets[j]
        let r = arena.tensor([x.shape[0], resnet.outChannels, x.shape[2], x.shape[3]])
        resnet(x, timeEmbedding: emb, output: r, arena: arena, pool: pool)
        guard j < attentions.count else { return r }
        let a = arena.tensor(r.shape)
        attentions[j](r, context: context, output: a, arena: arena, pool: pool)
        return a
    }

    /// Floating-point operations on [n, in, size.h, size.w], walking the shapes like the
    /// forward pass: `size` becomes the output's, `skips` gets the size of each pushed tensor.
    func flops(n: Int, size: inout (h: Int, w: Int), contextLength lc: Int, skips: inout [(h: Int, w: Int)]) -> Double {
        var f = 0.0
        for (j, r) in resnets.enumerated() {
            f += r.flops(n: n, h: size.h, w: size.w)
            if j < attentions.count { f += attentions[j].flops(n: n, hw: size.h * size.w, contextLength: lc) }
            skips.append(size)
        }
        if let ds = downsampler {
            size = (downsampled(size.h), downsampled(size.w))
            f += ds.flops(n: n, h: size.h, w: size.w)
            skips.append(size)
        }
        return f
    }
}
