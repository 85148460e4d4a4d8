import Kernels

extension UNet {
    /// Floating-point operations (2 × multiply-adds of convolutions, linear layers and
    /// attention; norms and pointwise ops left out) of one call on [batch, in, height, width]
    /// latents with `contextLength` text tokens — what `diffusion-bench` divides by time.
    public func flops(batch n: Int, height: Int, width: Int, contextLength lc: Int = 77) -> Double {
        let w = weights
        func conv(_ c: Conv2DWeights, _ ho: Int, _ wo: Int) -> Double {
            2 * Double(n * ho * wo) * Double(c.outChannels * c.inChannels * c.kernel * c.kernel)
        }
        var h = height, wd = width
        var f = conv(w.convIn, h, wd) + w.timeLinear1.flops(rows: n) + w.timeLinear2.flops(rows: n)
        var sizes: [(Int, Int)] = [(h, wd)]
        for block in w.downBlocks {
            for (j, r) in block.resnets.enumerated() {
                f += r.flops(n: n, h: h, w: wd)
                if j < block.attentions.count { f += block.attentions[j].flops(n: n, hw: h * wd, contextLength: lc) }
                sizes.append((h, wd))
            }
            if let ds = block.downsampler {
                let p = block.downsamplePadding
                h = (h + 2 * p - 3) / 2 + 1
                wd = (wd + 2 * p - 3) / 2 + 1
                f += conv(ds, h, wd)
                sizes.append((h, wd))
            }
        }
        f += w.midBlock.resnets.reduce(0) { $0 + $1.flops(n: n, h: h, w: wd) }
        f += w.midBlock.attentions.reduce(0) { $0 + $1.flops(n: n, hw: h * wd, contextLength: lc) }
        for block in w.upBlocks {
            for (j, r) in block.resnets.enumerated() {
                _ = sizes.popLast()
                f += r.flops(n: n, h: h, w: wd)
                if j < block.attentions.count { f += block.attentions[j].flops(n: n, hw: h * wd, contextLength: lc) }
            }
            if let us = block.upsampler, let next = sizes.last {
                (h, wd) = next
                f += conv(us, h, wd)
            }
        }
        return f + conv(w.convOut, h, wd)
    }
}

extension VAE {
    /// Floating-point operations of `decode` on [batch, latent, height, width] latents.
    public func decodeFlops(batch n: Int, height: Int, width: Int) -> Double {
        let d = decoder
        func conv(_ c: Conv2DWeights, _ ho: Int, _ wo: Int) -> Double {
            2 * Double(n * ho * wo) * Double(c.outChannels * c.inChannels * c.kernel * c.kernel)
        }
        var h = height, w = width
        var f = (d.postQuantConv.map { conv($0, h, w) } ?? 0) + conv(d.convIn, h, w)
        f += d.mid.resnet0.flops(n: n, h: h, w: w) + d.mid.resnet1.flops(n: n, h: h, w: w)
        f += d.mid.attention?.flops(n: n, hw: h * w) ?? 0
        for (i, resnets) in d.upResnets.enumerated() {
            f += resnets.reduce(0) { $0 + $1.flops(n: n, h: h, w: w) }
            if let us = d.upsamplers[i] {
                h *= 2
                w *= 2
                f += conv(us, h, w)
            }
        }
        return f + conv(d.convOut, h, w)
    }
}
