import Foundation
import Kernels

/// diffusers `AutoencoderTiny` (TAESD for SD 1.x/2.x latents, TAESDXL for SDXL's): a
/// distilled autoencoder of plain convolutions and ReLUs, about 1/25 of `AutoencoderKL`'s
/// decode cost. `decode` maps raw latents to images in about [−1, 1] (`DecoderTiny.forward`:
/// `tanh(x / 3) · 3`, the layers, then `x · 2 − 1`); `encode` maps images in [−1, 1] to raw
/// latents (`EncoderTiny.forward`: the layers on `(x + 1) / 2`). TAESD's `scaling_factor` is
/// 1: its latents are the diffusion model's latents as they are; `decodeScaled` divides by it
/// (and adds `shift_factor`) as `StableDiffusionPipeline` does before `vae.decode`.
/// Activations live in an arena sized by the first call. Not reentrant: one per concurrent job.
public final class TinyVAE: @unchecked Sendable {
    public let config: TinyVAEConfig
    let encoder: TinyVAEEncoderWeights
    let decoder: TinyVAEDecoderWeights
    let pool: ThreadPool
    let arena = Arena(minimumChunk: 1 << 20)

    private init(config: TinyVAEConfig, halves: (TinyVAEEncoderWeights, TinyVAEDecoderWeights), pool: ThreadPool) {
        self.config = config
        (encoder, decoder) = halves
        self.pool = pool
    }

    /// Loads an `AutoencoderTiny` folder (`config.json` + `*.safetensors`, fp32, fp16 or bf16);
    /// errors name the file, field or tensor.
    public convenience init(directory: URL, pool: ThreadPool) throws {
        let (config, encoder, decoder): (TinyVAEConfig, TinyVAEEncoderWeights, TinyVAEDecoderWeights) =
            try AutoencoderLoading.folder(directory, weights: .stored, config: TinyVAEConfig.init(contentsOf:))
        self.init(config: config, halves: (encoder, decoder), pool: pool)
    }

    /// A tiny VAE of `config`'s shapes with seeded random weights (benchmarks, tests).
    public static func randomWeights(config: TinyVAEConfig, seed: UInt64 = 0, pool: ThreadPool) throws -> TinyVAE {
        TinyVAE(config: config, halves: try AutoencoderLoading.random(config, seed: seed, weights: .stored, pool: pool), pool: pool)
    }

    /// Image side per latent side (8 for TAESD).
    public var downscaleFactor: Int { config.downscaleFactor }

    /// Memory held by activations, in bytes.
    public var workspaceBytes: Int { arena.capacity * 4 }

    /// Frees the activation memory; the next call allocates it again.
    public func releaseWorkspace() { arena.freeAll() }

    /// `AutoencoderTiny.decode(latents).sample`.
    /// - Parameters:
    ///   - latents: [N, latentChannels, h, w], raw (for TAESD: the pipeline's latents)
    ///   - output: [N, outChannels, h·f, w·f], f = `downscaleFactor`
    public func decode(_ latents: Tensor, output: Tensor) {
        decode(latents, divisor: 1, shift: 0, output: output)
    }

    /// Decodes pipeline latents: `decode(latents / scaling_factor + shift_factor)` (for TAESD
    /// and TAESDXL, scaling 1 and shift 0: the latents as they are).
    public func decodeScaled(_ latents: Tensor, output: Tensor) {
        decode(latents, divisor: config.scalingFactor, shift: config.shiftFactor, output: output)
    }

    private func decode(_ latents: Tensor, divisor: Float, shift: Float, output: Tensor) {
        let d = decoder, n = latents.shape[0], channels = config.decoderBlockOutChannels
        var hh = latents.shape[2], ww = latents.shape[3]
        precondition(latents.rank == 4 && latents.shape[1] == config.latentChannels, "TinyVAE.decode: latents \(latents.shape)")
        precondition(output.shape == [n, config.outChannels, hh * downscaleFactor, ww * downscaleFactor],
                     "TinyVAE.decode: output \(output.shape)")
        arena.reset()
        // One carry buffer holds each stage's input (as in `VAE.decode`): the largest is the last stage's.
        let carry = arena.tensor([n * channels[channels.count - 1] * hh * ww * downscaleFactor * downscaleFactor])
        var cur = carry.view(offset: 0, shape: [n, channels[0], hh, ww])
        do {
            // DecoderTiny.forward's clamp: torch.tanh(x / 3) * 3, then layers 0 (conv) and 1 (ReLU).
            let m = arena.mark()
            let z = arena.tensor(latents.shape)
            let src = UnsafePointer(latents.data), dst = z.data
            pool.parallelFor(0..<latents.count, grain: 4096) { r, _ in
                for i in r {
                    var v = src[i]
                    if divisor != 1 { v /= divisor }
                    if shift != 0 { v += shift }
                    dst[i] = Foundation.tanh(v / 3) * 3
                }
            }
            conv2d(z, weight: d.convIn.weight, bias: d.convIn.bias, padding: .symmetric(1), output: cur, pool: pool)
            activate(.relu, cur, output: cur, pool: pool)
            arena.release(to: m)
        }
        for (i, blocks) in d.blocks.enumerated() {
            let m = arena.mark()
            let ch = channels[i]
            cur = runBlocks(blocks, on: cur).output
            let conv = d.stageConvs[i]
            if i == d.blocks.count - 1 {
                conv2d(cur, weight: conv.weight, bias: conv.bias, padding: .symmetric(1), output: output, pool: pool)
            } else {
                // nn.Upsample(scale_factor=2, mode="nearest"), then the bias-free conv into the carry.
                let big = arena.tensor([n, ch, 2 * hh, 2 * ww])
                upsampleNearest2x(cur, output: big, pool: pool)
                hh *= 2
                ww *= 2
                cur = carry.view(offset: 0, shape: [n, conv.outChannels, hh, ww])
                conv2d(big, weight: conv.weight, bias: conv.bias, padding: .symmetric(1), output: cur, pool: pool)
            }
            arena.release(to: m)
        }
        // "scale image from [0, 1] to [-1, 1]": x.mul(2).sub(1).
        let out = output.data
        pool.parallelFor(0..<output.count, grain: 16_384) { r, _ in
            for i in r { out[i] = out[i] * 2 - 1 }
        }
    }

    /// `AutoencoderTiny.encode(image).latents`: raw latents (for TAESD, the diffusion model's).
    /// - Parameters:
    ///   - image: [N, inChannels, H, W] in [−1, 1]
    ///   - latents: [N, latentChannels, h, w], each stride-2 stage giving ⌊(side − 1) / 2⌋ + 1
    public func encode(_ image: Tensor, latents: Tensor) {
        let e = encoder, n = image.shape[0], channels = config.encoderBlockOutChannels
        precondition(image.rank == 4 && image.shape[1] == config.inChannels, "TinyVAE.encode: image \(image.shape)")
        var hh = image.shape[2], ww = image.shape[3]
        arena.reset()
        // The carry holds each stage conv's output; the first (full resolution) is the largest.
        let carry = arena.tensor([n * channels[0] * hh * ww])
        var cur: Tensor
        do {
            // EncoderTiny.forward: "scale image from [-1, 1] to [0, 1]": x.add(1).div(2).
            let m = arena.mark()
            let x = arena.tensor(image.shape)
            let src = UnsafePointer(image.data), dst = x.data
            pool.parallelFor(0..<image.count, grain: 16_384) { r, _ in
                for i in r { dst[i] = (src[i] + 1) / 2 }
            }
            cur = carry.view(offset: 0, shape: [n, channels[0], hh, ww])
            conv2d(x, weight: e.stageConvs[0].weight, bias: e.stageConvs[0].bias, padding: .symmetric(1), output: cur, pool: pool)
            arena.release(to: m)
        }
        for (i, blocks) in e.blocks.enumerated() {
            let m = arena.mark()
            let buffers: [Tensor]
            (cur, buffers) = runBlocks(blocks, on: cur)
            if i == e.blocks.count - 1 {
                precondition(latents.shape == [n, config.latentChannels, hh, ww],
                             "TinyVAE.encode: latents \(latents.shape) is not [\(n), \(config.latentChannels), \(hh), \(ww)]")
                conv2d(cur, weight: e.convOut.weight, bias: e.convOut.bias, padding: .symmetric(1), output: latents, pool: pool)
            } else {
                // The next stage's stride-2 conv (padding 1, no bias), into the carry.
                if blocks.isEmpty {
                    buffers[0].copy(from: cur)
                    cur = buffers[0]
                }
                let conv = e.stageConvs[i + 1]
                hh = (hh - 1) / 2 + 1
                ww = (ww - 1) / 2 + 1
                let next = carry.view(offset: 0, shape: [n, conv.outChannels, hh, ww])
                conv2d(cur, weight: conv.weight, bias: conv.bias, stride: 2, padding: .symmetric(1), output: next, pool: pool)
                cur = next
            }
            arena.release(to: m)
        }
    }

    /// Runs one stage's `AutoencoderTinyBlock`s on `input`, alternating between two arena
    /// buffers of its shape (released by the caller with the stage); returns the stage's
    /// output (`input` itself for a stage without blocks) and the buffers.
    private func runBlocks(_ blocks: [TinyVAEBlock], on input: Tensor) -> (output: Tensor, buffers: [Tensor]) {
        let buffers = [arena.tensor(input.shape), arena.tensor(input.shape)]
        var cur = input
        for (j, block) in blocks.enumerated() {
            block(cur, output: buffers[j % 2], arena: arena, pool: pool)
            cur = buffers[j % 2]
        }
        return (cur, buffers)
    }

    /// Pipeline latents of an image: `encode(image) · scaling_factor` after subtracting
    /// `shift_factor` (TAESD: the raw latents).
    public func encodeScaled(_ image: Tensor, latents: Tensor) {
        encode(image, latents: latents)
        let shift = config.shiftFactor, factor = config.scalingFactor
        guard shift != 0 || factor != 1 else { return }
        let p = latents.data
        for i in 0..<latents.count { p[i] = (p[i] - shift) * factor }
    }

    /// Floating-point operations (2 × multiply-adds of the convolutions) of `decode` on
    /// [batch, latent, height, width] latents.
    public func decodeFlops(batch n: Int, height: Int, width: Int) -> Double {
        let d = decoder
        var h = height, w = width
        var f = d.convIn.flops(n: n, h: h, w: w)
        for (i, blocks) in d.blocks.enumerated() {
            f += blocks.reduce(0) { $0 + $1.flops(n: n, h: h, w: w) }
            if i < d.blocks.count - 1 { h *= 2; w *= 2 }
            f += d.stageConvs[i].flops(n: n, h: h, w: w)
        }
        return f
    }

    /// Floating-point operations of `encode` on [batch, in, height, width] images.
    public func encodeFlops(batch n: Int, height: Int, width: Int) -> Double {
        let e = encoder
        var h = height, w = width, f = 0.0
        for (i, blocks) in e.blocks.enumerated() {
            if i > 0 { h = (h - 1) / 2 + 1; w = (w - 1) / 2 + 1 }
            f += e.stageConvs[i].flops(n: n, h: h, w: w) + blocks.reduce(0) { $0 + $1.flops(n: n, h: h, w: w) }
        }
        return f + e.convOut.flops(n: n, h: h, w: w)
    }
}
