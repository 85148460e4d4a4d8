import Foundation
import Kernels

/// diffusers `AutoencoderKL`: `decode` maps latents to images in about [−1, 1], `encode`
/// maps images to the mean and standard deviation of the latent Gaussian. Both work on
/// *unscaled* latents, like diffusers' `vae.decode` / `vae.encode`; `decodeScaled` /
/// `encodeScaled` apply the config's `scaling_factor` (and `shift_factor`) as the
/// StableDiffusionPipeline does. Not reentrant: one `VAE` per concurrent job.
public final class VAE: @unchecked Sendable {
    public let config: VAEConfig
    let encoder: VAEEncoderWeights?
    let decoder: VAEDecoderWeights
    let pool: ThreadPool
    /// Its own, or the UNet's (`shareWorkspace(of:)`).
    private(set) var arena = Arena()

    init(config: VAEConfig, encoder: VAEEncoderWeights?, decoder: VAEDecoderWeights, pool: ThreadPool) {
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        self.pool = pool
    }

    /// Loads `vae/config.json` and `vae/*.safetensors`.
    public convenience init(directory: URL, weights: WeightPrecision = .stored, pool: ThreadPool) throws {
        let (config, encoder, decoder): (VAEConfig, VAEEncoderWeights, VAEDecoderWeights) =
            try AutoencoderLoading.folder(directory, weights: weights, config: VAEConfig.init(contentsOf:))
        self.init(config: config, encoder: encoder, decoder: decoder, pool: pool)
    }

    /// A VAE of `config`'s shapes with seeded random weights (benchmarks).
    public static func randomWeights(config: VAEConfig, seed: UInt64 = 0, weights: WeightPrecision = .stored,
                                     pool: ThreadPool) throws -> VAE {
        let (encoder, decoder): (VAEEncoderWeights, VAEDecoderWeights) = try AutoencoderLoading.random(config, seed: seed, weights: weights, pool: pool)
        return VAE(config: config, encoder: encoder, decoder: decoder, pool: pool)
    }

    /// Memory held by activations, in bytes.
    public var workspaceBytes: Int { arena.capacity * 4 }

    /// Frees the activation memory (for example between jobs of different sizes); the next
    /// call allocates it again.
    public func releaseWorkspace() { arena.freeAll() }

    /// Decodes and encodes in `unet`'s activation arena from now on: the pipeline never runs
    /// them at once, so a job needs the larger of the two workspaces (SD 1.5 at 512²: the
    /// decoder's 1.1 GB, the guided UNet's 0.4 GB), not their sum.
    public func shareWorkspace(of unet: UNet) { arena = unet.arena }

    /// Image side per latent side (8 for SD).
    public var downscaleFactor: Int { config.downscaleFactor }

    /// - Parameters:
    ///   - latents: [N, latentChannels, h, w], unscaled (diffusers `vae.decode` input)
    ///   - output: [N, outChannels, h·f, w·f], f = `downscaleFactor`
    public func decode(_ latents: Tensor, output: Tensor) {
        let d = decoder, n = latents.shape[0]
        var hh = latents.shape[2], ww = latents.shape[3]
        let f = downscaleFactor
        precondition(latents.rank == 4 && latents.shape[1] == config.latentChannels, "VAE.decode: latents \(latents.shape)")
        precondition(output.shape == [n, config.outChannels, hh * f, ww * f], "VAE.decode: output \(output.shape)")
        arena.reset()
        // One "carry" buffer holds each block's input; a block's temporaries are released when
        // it ends, so peak memory is one carry plus the largest block's working set.
        var carryCount = d.convIn.outChannels * hh * ww
        do {
            var (h2, w2) = (hh, ww)
            for (i, resnets) in d.upResnets.enumerated() {
                if d.upsamplers[i] != nil { h2 *= 2; w2 *= 2 }
                carryCount = max(carryCount, resnets[0].outChannels * h2 * w2)
            }
        }
        let carry = arena.tensor([n * carryCount])
        func inCarry(_ shape: [Int]) -> Tensor { carry.view(offset: 0, shape: shape) }

        var cur: Tensor
        do {
            let m = arena.mark()
            var z = latents
            if let pq = d.postQuantConv {
                z = arena.tensor(latents.shape)
                conv2d(latents, weight: pq.weight, bias: pq.bias, output: z, pool: pool)
            }
            let x = arena.tensor([n, d.convIn.outChannels, hh, ww])
            conv2d(z, weight: d.convIn.weight, bias: d.convIn.bias, stride: 1, padding: .symmetric(1), output: x, pool: pool)
            cur = inCarry(x.shape)
            d.mid(x, output: cur, arena: arena, pool: pool)
            arena.release(to: m)
        }
        for (i, resnets) in d.upResnets.enumerated() {
            let out = resnets[0].outChannels
            let last = i == d.upResnets.count - 1
            let m = arena.mark()
            // Two buffers per resolution, alternated between resnets (the carry is free once
            // the first resnet has read it).
            let buffers = [arena.tensor([n, out, hh, ww]), arena.tensor([n, out, hh, ww])]
            for (j, resnet) in resnets.enumerated() {
                let dst = buffers[j % 2]
                resnet(cur, timeEmbedding: nil, output: dst, arena: arena, pool: pool)
                cur = dst
            }
            if let us = d.upsamplers[i] {
                let big = arena.tensor([n, out, 2 * hh, 2 * ww])
                upsampleNearest2x(cur, output: big, pool: pool)
                hh *= 2
                ww *= 2
                cur = inCarry([n, us.outChannels, hh, ww])
                conv2d(big, weight: us.weight, bias: us.bias, stride: 1, padding: .symmetric(1), output: cur, pool: pool)
            } else if !last {
                let dst = inCarry(cur.shape)
                dst.copy(from: cur)
                cur = dst
            }
            if !last { arena.release(to: m) }
        }
        let normed = arena.tensor(cur.shape)
        groupNorm(cur, groups: config.normNumGroups, gamma: d.convNormOut.weight, beta: d.convNormOut.bias,
                  eps: config.normEps, silu: true, output: normed, pool: pool)
        conv2d(normed, weight: d.convOut.weight, bias: d.convOut.bias, stride: 1, padding: .symmetric(1), output: output, pool: pool)
    }

    /// Decodes pipeline latents: `decode(latents / scaling_factor + shift_factor)`.
    public func decodeScaled(_ latents: Tensor, output: Tensor) {
        let z = Tensor(zeros: latents.shape)
        Kernels.scale(latents, by: 1 / config.scalingFactor, output: z, pool: pool)
        if config.shiftFactor != 0 { addRowBias(z, Tensor(shape: [1], values: [config.shiftFactor]), pool: pool) }
        decode(z, output: output)
    }

    /// Errors of `encode`.
    public enum EncodeError: Error, CustomStringConvertible {
        case noEncoder
        public var description: String { "this VAE was loaded without its encoder" }
    }

    /// - Parameters:
    ///   - image: [N, inChannels, H, W] in [−1, 1]; H and W multiples of `downscaleFactor`
    ///   - mean: [N, latentChannels, H/f, W/f] (`latent_dist.mean`)
    ///   - std: same shape (`latent_dist.std` = exp(½·clamp(logvar, −30, 20))), or nil
    public func encode(_ image: Tensor, mean: Tensor, std: Tensor?) throws {
        guard let e = encoder else { throw EncodeError.noEncoder }
        let n = image.shape[0]
        var hh = image.shape[2], ww = image.shape[3]
        let l = config.latentChannels
        arena.reset()
        // As in `decode`: one carry buffer between blocks, block temporaries released.
        var carryCount = e.convIn.outChannels * hh * ww
        do {
            var (h2, w2) = (hh, ww)
            for (i, resnets) in e.downResnets.enumerated() {
                if e.downsamplers[i] != nil { h2 = (h2 - 2) / 2 + 1; w2 = (w2 - 2) / 2 + 1 }
                carryCount = max(carryCount, resnets[0].outChannels * h2 * w2)
            }
        }
        let carry = arena.tensor([n * carryCount])
        var cur = carry.view(offset: 0, shape: [n, e.convIn.outChannels, hh, ww])
        conv2d(image, weight: e.convIn.weight, bias: e.convIn.bias, stride: 1, padding: .symmetric(1), output: cur, pool: pool)
        for (i, resnets) in e.downResnets.enumerated() {
            let out = resnets[0].outChannels
            let m = arena.mark()
            let buffers = [arena.tensor([n, out, hh, ww]), arena.tensor([n, out, hh, ww])]
            for (j, resnet) in resnets.enumerated() {
                let dst = buffers[j % 2]
                resnet(cur, timeEmbedding: nil, output: dst, arena: arena, pool: pool)
                cur = dst
            }
            if let ds = e.downsamplers[i] {
                // diffusers Downsample2D(padding=0) pads (left 0, right 1, top 0, bottom 1) first.
                hh = (hh + 1 - 3) / 2 + 1
                ww = (ww + 1 - 3) / 2 + 1
                let d = carry.view(offset: 0, shape: [n, out, hh, ww])
                conv2d(cur, weight: ds.weight, bias: ds.bias, stride: 2,
                       padding: Conv2DPadding(top: 0, left: 0, bottom: 1, right: 1), output: d, pool: pool)
                cur = d
            } else {
                let d = carry.view(offset: 0, shape: cur.shape)
                d.copy(from: cur)
                cur = d
            }
            arena.release(to: m)
        }
        let midOut = arena.tensor(cur.shape)
        e.mid(cur, output: midOut, arena: arena, pool: pool)
        let normed = arena.tensor(cur.shape)
        groupNorm(midOut, groups: config.normNumGroups, gamma: e.convNormOut.weight, beta: e.convNormOut.bias,
                  eps: config.normEps, silu: true, output: normed, pool: pool)
        var moments = arena.tensor([n, 2 * l, hh, ww])
        conv2d(normed, weight: e.convOut.weight, bias: e.convOut.bias, stride: 1, padding: .symmetric(1), output: moments, pool: pool)
        if let q = e.quantConv {
            let qm = arena.tensor(moments.shape)
            conv2d(moments, weight: q.weight, bias: q.bias, output: qm, pool: pool)
            moments = qm
        }
        precondition(mean.shape == [n, l, hh, ww], "VAE.encode: mean \(mean.shape) is not [\(n), \(l), \(hh), \(ww)]")
        let plane = l * hh * ww
        for b in 0..<n {
            mean.view(offset: b * plane, shape: [plane]).copy(from: moments.view(offset: b * 2 * plane, shape: [plane]))
            if let std {
                let src = moments.data + b * 2 * plane + plane, dst = std.data + b * plane
                for i in 0..<plane { dst[i] = Foundation.exp(0.5 * min(max(src[i], -30), 20)) }
            }
        }
    }

    /// Pipeline latents of an image: `scaling_factor · (mean − shift_factor)` (the
    /// distribution's mode; img2img samplers add their own noise).
    public func encodeScaled(_ image: Tensor, latents: Tensor) throws {
        try encode(image, mean: latents, std: nil)
        if config.shiftFactor != 0 { addRowBias(latents, Tensor(shape: [1], values: [-config.shiftFactor]), pool: pool) }
        Kernels.scale(latents, by: config.scalingFactor, output: latents, pool: pool)
    }
}
