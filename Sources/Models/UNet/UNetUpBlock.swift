import Kernels

/// One up block of the UNet: diffusers `CrossAttnUpBlock2D` / `UpBlock2D`. Each of its
/// layers_per_block + 1 resnets first concatenates the next skip tensor (popped from the
/// stack the down blocks filled) on the channel axis, and is followed by a transformer in
/// the cross-attention kind; then an optional nearest upsample + 3×3 conv (`Upsample2D`,
/// every block but the last).
struct UNetUpBlock: @unchecked Sendable {
    /// Module path, "up_blocks.i": the weights' prefix and the trace name.
    let name: String
    var resnets: [ResnetBlock]
    /// One per resnet for cross-attention blocks, empty otherwise.
    var attentions: [SpatialTransformer]
    /// upsamplers.0.conv: [out, out, 3, 3]
    var upsampler: Conv2DWeights?

    /// Block `i` of `c.upBlockTypes`. diffusers walks reversed(block_out_channels): block i
    /// outputs rch[i]; resnet j takes the previous block's output (j = 0) or rch[i], plus the
    /// skip's channels: rch[i], except `in_channels` (the next-lower level's width,
    /// rch[i + 1]) for the last resnet.
    init(_ s: WeightSource, config c: UNetConfig, index i: Int) throws {
        let rch = Array(c.blockOutChannels.reversed()), n = rch.count
        let down = n - 1 - i   // the down block mirrored, for per-block settings
        let outC = rch[i], prevOut = rch[max(i - 1, 0)], skipIn = rch[min(i + 1, n - 1)]
        let layers = c.layersPerBlock[down] + 1
        name = "up_blocks.\(i)"
        resnets = []
        attentions = []
        for j in 0..<layers {
            let skip = j == layers - 1 ? skipIn : outC
            let resIn = j == 0 ? prevOut : outC
            resnets.append(try ResnetBlock(s, "\(name).resnets.\(j)", in: resIn + skip, out: outC,
                                           timeEmbedding: c.timeEmbedding.dimension, groups: c.normNumGroups, eps: c.normEps))
            if c.upBlockTypes[i] == .crossAttention {
                attentions.append(try SpatialTransformer(
                    s, "\(name).attentions.\(j)", channels: outC, heads: c.numAttentionHeads[down],
                    depth: c.upTransformerLayersPerBlock[i][j], crossAttentionDim: c.crossAttentionDim, groups: c.normNumGroups))
            }
        }
        upsampler = i < n - 1 ? try Conv2DWeights(s, "\(name).upsamplers.0.conv", in: outC, out: outC, kernel: 3) : nil
    }

    /// - Parameters:
    ///   - x: [N, C, H, W], the previous block's output
    ///   - timeEmbedding: SiLU(temb), [N, timeEmbeddingDim]
    ///   - context: [N, L, crossAttentionDim]
    ///   - skips: one tensor is popped per resnet; the upsampler then takes the size of the
    ///     next one left on the stack
    ///   - first: the resnet to start at (DeepCache's shallow pass, `enter_block_number`: `x` is
    ///     then the kept input of that resnet); 0 runs the whole block
    ///   - resnetInput: sees each resnet's index and its input before the skip is concatenated
    ///     (DeepCache keeps one of them)
    /// - Returns: [N, out, H', W'] in the arena; traced as `name`.
    func callAsFunction(_ x: Tensor, timeEmbedding emb: Tensor, context: Tensor, skips: inout [Tensor],
                        from first: Int = 0, resnetInput: ((Int, Tensor) -> Void)? = nil,
                        arena: Arena, pool: ThreadPool, trace: ((String, Tensor) -> Void)?) -> Tensor {
        let n = x.shape[0], hh = x.shape[2], ww = x.shape[3]
        // Ping-pong buffers for this block's resolution.
        let out = resnets[0].outChannels
        let maxIn = resnets.map(\.inChannels).max() ?? out
        let catBuffer = arena.tensor([n, maxIn, hh, ww])
        let resOut = arena.tensor([n, out, hh, ww])
        let attnOut = arena.tensor([n, out, hh, ww])
        var cur = x
        for (j, resnet) in resnets.enumerated() where j >= first {
            resnetInput?(j, cur)
            guard let skip = skips.popLast() else { preconditionFailure("UNet: skip stack underflow") }
            let cat = catBuffer.view(offset: 0, shape: [n, resnet.inChannels, hh, ww])
            concatChannels(cur, skip, output: cat, pool: pool)
            resnet(cat, timeEmbedding: emb, output: resOut, arena: arena, pool: pool)
            cur = resOut
            if j < attentions.count {
                attentions[j](resOut, context: context, output: attnOut, arena: arena, pool: pool)
                cur = attnOut
            }
        }
        if let us = upsampler, let target = skips.last {
            // diffusers passes the next skip's size as upsample_size, so odd sizes round-trip.
            let ho = target.shape[2], wo = target.shape[3]
            let big = arena.tensor([n, out, ho, wo])
            upsampleNearest(cur, output: big, pool: pool)
            let conv = arena.tensor([n, us.outChannels, ho, wo])
            conv2d(big, weight: us.weight, bias: us.bias, stride: 1, padding: .symmetric(1), output: conv, pool: pool)
            cur = conv
        }
        trace?(name, cur)
        return cur
    }

    /// Floating-point operations on [n, C, size.h, size.w], walking the shapes like the
    /// forward pass: one entry of `skips` is popped per resnet, and `size` becomes the output's.
    func flops(n: Int, size: inout (h: Int, w: Int), contextLength lc: Int, skips: inout [(h: Int, w: Int)]) -> Double {
        var f = 0.0
        for (j, r) in resnets.enumerated() {
            _ = skips.popLast()
            f += r.flops(n: n, h: size.h, w: size.w)
            if j < attentions.count { f += attentions[j].flops(n: n, hw: size.h * size.w, contextLength: lc) }
        }
        if let us = upsampler, let next = skips.last {
            size = next
            f += us.flops(n: n, h: size.h, w: size.w)
        }
        return f
    }
}
