import Kernels

extension UNet {
    /// Floating-point operations (2 × multiply-adds of convolutions, linear layers and
    /// attention; norms and pointwise ops left out) of one call on [batch, in, height, width]
    /// latents with `contextLength` text tokens — what `diffusion-bench` divides by time.
    public func flops(batch n: Int, height: Int, width: Int, contextLength lc: Int = 77) -> Double {
        let w = weights
        var size = (h: height, w: width)
        var f = w.convIn.flops(n: n, h: height, w: width) + w.timeEmbedding.flops(n: n)
            + (w.additionEmbedding?.flops(n: n) ?? 0)
        var skips = [size]
        for block in w.downBlocks { f += block.flops(n: n, size: &size, contextLength: lc, skips: &skips) }
        f += w.midBlock?.flops(n: n, h: size.h, w: size.w, contextLength: lc) ?? 0
        for block in w.upBlocks { f += block.flops(n: n, size: &size, contextLength: lc, skips: &skips) }
        return f + w.convOut.flops(n: n, h: size.h, w: size.w)
    }
}

extension VAE {
    /// Floating-point operations of `decode` on [batch, latent, height, width] latents.
    public func decodeFlops(batch n: Int, height: Int, width: Int) -> Double {
        let d = decoder
        func conv(_ c: Conv2DWeights, _ ho: Int, _ wo: Int) -> Double { c.flops(n: n, h: ho, w: wo) }
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
