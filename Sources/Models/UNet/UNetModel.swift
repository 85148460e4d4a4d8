import Foundation
import Kernels

/// diffusers `UNet2DConditionModel` forward pass on the CPU.
///
/// ```
/// emb = linear_2(SiLU(linear_1(get_timestep_embedding(t))))      time_embedding
/// h = conv_in(x); skips = [h]
/// down blocks: (resnet(h, emb) [→ transformer(h, context)]) × layers, push each; downsample, push
/// mid block: resnet → transformer → resnet
/// up blocks: (cat(h, skips.pop()) → resnet [→ transformer]) × (layers + 1); upsample
/// out = conv_out(SiLU(conv_norm_out(h)))
/// ```
/// Activations live in an `Arena` owned by the model: the first call with given shapes sizes
/// it, later calls (the denoising loop) reuse it without allocating buffers. Calls are not
/// reentrant: use one `UNet` per concurrent job.
public final class UNet: @unchecked Sendable {
    public let config: UNetConfig
    let weights: UNetWeights
    let pool: ThreadPool
    let arena = Arena()

    init(config: UNetConfig, weights: UNetWeights, pool: ThreadPool) {
        self.config = config
        self.weights = weights
        self.pool = pool
    }

    /// Loads `unet/config.json` and the `unet/*.safetensors` weights of a diffusers folder.
    public convenience init(directory: URL, pool: ThreadPool = .shared) throws {
        let config = try UNetConfig(contentsOf: directory.appendingPathComponent("config.json"))
        let source = try CheckpointWeightSource(component: directory.path, directory: directory)
        try self.init(config: config, weights: UNetWeights(config: config, source: source), pool: pool)
    }

    /// A UNet of `config`'s shapes with seeded random weights (benchmarks; no files needed).
    public static func randomWeights(config: UNetConfig, seed: UInt64 = 0, pool: ThreadPool = .shared) throws -> UNet {
        UNet(config: config, weights: try UNetWeights(config: config, source: RandomWeightSource(seed: seed, pool: pool)), pool: pool)
    }

    /// Memory held by activations after the calls so far, in bytes.
    public var workspaceBytes: Int { arena.capacity * 4 }

    /// Frees the activation memory (for example between jobs of different sizes); the next
    /// call allocates it again.
    public func releaseWorkspace() { arena.freeAll() }

    /// Predicts the noise (or v) for `sample` at `timestep`, conditioned on `context`.
    /// - Parameters:
    ///   - sample: [N, inChannels, h, w] latents
    ///   - timestep: one timestep (in 0…1000 units) for every batch element
    ///   - context: [N, L, crossAttentionDim] text-encoder hidden states
    ///   - output: [N, outChannels, h, w]
    public func callAsFunction(sample: Tensor, timestep: Float, context: Tensor, output: Tensor) {
        forward(sample: sample, timesteps: Array(repeating: timestep, count: sample.shape[0]),
                context: context, output: output, trace: nil)
    }

    /// As above with one timestep per batch element.
    public func callAsFunction(sample: Tensor, timesteps: [Float], context: Tensor, output: Tensor) {
        forward(sample: sample, timesteps: timesteps, context: context, output: output, trace: nil)
    }

    // swiftlint:disable:next function_body_length
    func forward(sample: Tensor, timesteps: [Float], context: Tensor, output: Tensor,
                 trace: ((String, Tensor) -> Void)?) {
        let c = config, w = weights
        let n = sample.shape[0]
        precondition(sample.rank == 4 && sample.shape[1] == c.inChannels, "UNet: sample \(sample.shape) is not [N, \(c.inChannels), h, w]")
        precondition(timesteps.count == n, "UNet: \(timesteps.count) timesteps for batch \(n)")
        precondition(context.rank == 3 && context.shape[0] == n && context.shape[2] == c.crossAttentionDim,
                     "UNet: context \(context.shape) is not [\(n), L, \(c.crossAttentionDim)]")
        precondition(output.shape == [n, c.outChannels, sample.shape[2], sample.shape[3]], "UNet: output \(output.shape)")
        arena.reset()
        let ch0 = c.blockOutChannels[0]

        // Time embedding; every resnet applies SiLU to it first, so do that once.
        let sinusoid = arena.tensor([n, ch0])
        timestepEmbedding(timesteps, dim: ch0, flipSinToCos: c.flipSinToCos, downscaleFreqShift: c.freqShift, output: sinusoid)
        let hiddenT = arena.tensor([n, c.timeEmbeddingDim])
        linear(sinusoid, weight: w.timeLinear1.weight, bias: w.timeLinear1.bias, output: hiddenT, pool: pool)
        activate(.silu, hiddenT, output: hiddenT, pool: pool)
        let emb = arena.tensor([n, c.timeEmbeddingDim])
        linear(hiddenT, weight: w.timeLinear2.weight, bias: w.timeLinear2.bias, output: emb, pool: pool)
        trace?("time_embedding", emb)
        activate(.silu, emb, output: emb, pool: pool)

        var input = sample
        if c.centerInputSample {
            input = arena.tensor(sample.shape)
            Kernels.scale(sample, by: 2, output: input, pool: pool)
            addRowBias(input, Tensor(shape: [1], values: [-1]), pool: pool)
        }
        var hh = sample.shape[2], ww = sample.shape[3]
        var cur = arena.tensor([n, ch0, hh, ww])
        conv2d(input, weight: w.convIn.weight, bias: w.convIn.bias, stride: 1, padding: .symmetric(1), output: cur, pool: pool)
        trace?("conv_in", cur)
        var skips = [cur]

        for (i, block) in w.downBlocks.enumerated() {
            for (j, resnet) in block.resnets.enumerated() {
                let r = arena.tensor([n, resnet.outChannels, hh, ww])
                resnet(cur, timeEmbedding: emb, output: r, arena: arena, pool: pool)
                cur = r
                if j < block.attentions.count {
                    let a = arena.tensor(r.shape)
                    block.attentions[j](r, context: context, output: a, arena: arena, pool: pool)
                    cur = a
                }
                skips.append(cur)
            }
            if let ds = block.downsampler {
                let p = block.downsamplePadding
                let ho = (hh + 2 * p - 3) / 2 + 1, wo = (ww + 2 * p - 3) / 2 + 1
                let d = arena.tensor([n, ds.outChannels, ho, wo])
                conv2d(cur, weight: ds.weight, bias: ds.bias, stride: 2, padding: .symmetric(p), output: d, pool: pool)
                cur = d
                hh = ho
                ww = wo
                skips.append(cur)
            }
            trace?("down_blocks.\(i)", cur)
        }

        do {
            let mid = w.midBlock
            let a = arena.tensor([n, mid.resnets[0].outChannels, hh, ww])
            mid.resnets[0](cur, timeEmbedding: emb, output: a, arena: arena, pool: pool)
            var x = a
            for (k, attn) in mid.attentions.enumerated() {
                let t = arena.tensor(x.shape)
                attn(x, context: context, output: t, arena: arena, pool: pool)
                let r = arena.tensor(x.shape)
                mid.resnets[k + 1](t, timeEmbedding: emb, output: r, arena: arena, pool: pool)
                x = r
            }
            cur = x
            trace?("mid_block", cur)
        }

        for (i, block) in w.upBlocks.enumerated() {
            // Ping-pong buffers for this block's resolution.
            let out = block.resnets[0].outChannels
            let maxIn = block.resnets.map(\.inChannels).max() ?? out
            let catBuffer = arena.tensor([n, maxIn, hh, ww])
            let resOut = arena.tensor([n, out, hh, ww])
            let attnOut = arena.tensor([n, out, hh, ww])
            for (j, resnet) in block.resnets.enumerated() {
                guard let skip = skips.popLast() else { preconditionFailure("UNet: skip stack underflow") }
                let cat = catBuffer.view(offset: 0, shape: [n, resnet.inChannels, hh, ww])
                concatChannels(cur, skip, output: cat, pool: pool)
                resnet(cat, timeEmbedding: emb, output: resOut, arena: arena, pool: pool)
                cur = resOut
                if j < block.attentions.count {
                    block.attentions[j](resOut, context: context, output: attnOut, arena: arena, pool: pool)
                    cur = attnOut
                }
            }
            if let us = block.upsampler, let target = skips.last {
                // diffusers passes the next skip's size as upsample_size, so odd sizes round-trip.
                let ho = target.shape[2], wo = target.shape[3]
                let big = arena.tensor([n, out, ho, wo])
                upsampleNearest(cur, output: big, pool: pool)
                let conv = arena.tensor([n, us.outChannels, ho, wo])
                conv2d(big, weight: us.weight, bias: us.bias, stride: 1, padding: .symmetric(1), output: conv, pool: pool)
                cur = conv
                hh = ho
                ww = wo
            }
            trace?("up_blocks.\(i)", cur)
        }

        let m = arena.mark()
        let normed = arena.tensor(cur.shape)
        groupNorm(cur, groups: c.normNumGroups, gamma: w.convNormOut.weight, beta: w.convNormOut.bias,
                  eps: c.normEps, silu: true, output: normed, pool: pool)
        conv2d(normed, weight: w.convOut.weight, bias: w.convOut.bias, stride: 1, padding: .symmetric(1), output: output, pool: pool)
        arena.release(to: m)
    }
}
