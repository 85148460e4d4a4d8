import Foundation
import Kernels

/// diffusers `UNet2DConditionModel` forward pass on the CPU.
///
/// ```
/// emb = linear_2(SiLU(linear_1(get_timestep_embedding(t))))      UNetTimeEmbedding
/// SDXL (addition_embed_type "text_time"):                          UNetAdditionEmbedding
///   emb += add_embedding(cat(text_embeds, get_timestep_embedding(time_ids).reshape(N, -1)))
/// h = conv_in(x); skips = [h]
/// down blocks: (resnet(h, emb) [→ transformer(h, context)]) × layers, push each; downsample, push
///                                                                  UNetDownBlock
/// mid block: resnet → transformer → resnet (or one resnet, or none) UNetMidBlock
/// up blocks: (cat(h, skips.pop()) → resnet [→ transformer]) × (layers + 1); upsample
///                                                                  UNetUpBlock
/// out = conv_out(SiLU(conv_norm_out(h)))
/// ```
/// SDXL-family UNets (`config.additionEmbedding` non-nil) need the pooled text embeddings and
/// the size ids in every call: pass `added: UNetAdditionalConditioning(textEmbeds: [N, P],
/// timeIDs: [N, 6])`; other UNets take `added: nil` (the default).
///
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
    public convenience init(directory: URL, weights: WeightPrecision = .stored, pool: ThreadPool) throws {
        let config = try UNetConfig(contentsOf: directory.appendingPathComponent("config.json"))
        let source = try CheckpointWeightSource(component: directory.path, directory: directory, precision: weights)
        try self.init(config: config, weights: UNetWeights(config: config, source: source), pool: pool)
    }

    /// A UNet of `config`'s shapes with seeded random weights (benchmarks; no files needed).
    public static func randomWeights(config: UNetConfig, seed: UInt64 = 0, weights: WeightPrecision = .stored,
                                     pool: ThreadPool) throws -> UNet {
        UNet(config: config, weights: try UNetWeights(config: config, source: RandomWeightSource(seed: seed, precision: weights, pool: pool)),
             pool: pool)
    }

    /// Every parameter by its diffusers name (see `ParameterRegistry`).
    var parameters: ParameterRegistry { weights.parameters }

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
    ///   - added: SDXL's `text_embeds` [N, P] and `time_ids` [N, K] (diffusers'
    ///     `added_cond_kwargs`): required when `config.additionEmbedding` is set, nil otherwise
    ///   - output: [N, outChannels, h, w]
    public func callAsFunction(sample: Tensor, timestep: Float, context: Tensor,
                               added: UNetAdditionalConditioning? = nil, output: Tensor) {
        forward(sample: sample, timesteps: Array(repeating: timestep, count: sample.shape[0]),
                context: context, added: added, output: output, trace: observer)
    }

    /// As above with one timestep per batch element.
    public func callAsFunction(sample: Tensor, timesteps: [Float], context: Tensor,
                               added: UNetAdditionalConditioning? = nil, output: Tensor) {
        forward(sample: sample, timesteps: timesteps, context: context, added: added, output: output, trace: observer)
    }

    /// As above, a full pass that keeps DeepCache's deep feature, or only the shallow branch
    /// reusing it (see `UNetFeatureCache`).
    public func callAsFunction(sample: Tensor, timestep: Float, context: Tensor,
                               added: UNetAdditionalConditioning? = nil, output: Tensor, cache: UNetCacheStep) {
        forward(sample: sample, timesteps: Array(repeating: timestep, count: sample.shape[0]),
                context: context, added: added, output: output, cache: cache, trace: observer)
    }

    /// Sees every traced block output of the public calls (tests: which blocks ran).
    var observer: ((String, Tensor) -> Void)?

    /// `UNet2DConditionModel.forward`: the blocks do the work; `trace` sees "time_embedding",
    /// "add_embedding" (SDXL), "conv_in", "down_blocks.i", "mid_block" and "up_blocks.i" (the reference tests compare
    /// them with diffusers'). With a `.shallow` cache step it is DeepCache's `quick_replicate`
    /// branch instead (`UNetFeatureCache`): "down_blocks.0.layer0" and the last "up_blocks.i".
    func forward(sample: Tensor, timesteps: [Float], context: Tensor, added: UNetAdditionalConditioning? = nil,
                 output: Tensor, cache: UNetCacheStep? = nil, trace: ((String, Tensor) -> Void)?) {
        let c = config, w = weights
        let n = sample.shape[0]
        precondition(sample.rank == 4 && sample.shape[1] == c.inChannels, "UNet: sample \(sample.shape) is not [N, \(c.inChannels), h, w]")
        precondition(timesteps.count == n, "UNet: \(timesteps.count) timesteps for batch \(n)")
        precondition(context.rank == 3 && context.shape[0] == n && context.shape[2] == c.crossAttentionDim,
                     "UNet: context \(context.shape) is not [\(n), L, \(c.crossAttentionDim)]")
        precondition(output.shape == [n, c.outChannels, sample.shape[2], sample.shape[3]], "UNet: output \(output.shape)")
        precondition((added == nil) == (w.additionEmbedding == nil),
                     added == nil ? "UNet: addition_embed_type text_time needs text_embeds and time_ids"
                                  : "UNet: text_embeds / time_ids given to a UNet without addition_embed_type")
        if let added, let a = w.additionEmbedding { a.validate(added, batch: n) }
        arena.reset()

        // 1. time: SiLU(emb + aug_emb), shared by every resnet
        var aug: Tensor?
        if let added, let a = w.additionEmbedding { aug = a(added, arena: arena, pool: pool, trace: trace) }
        let emb = w.timeEmbedding(timesteps, adding: aug, arena: arena, pool: pool, trace: trace)

        // 2. pre-process
        var input = sample
        if c.centerInputSample {
            input = arena.tensor(sample.shape)
            Kernels.scale(sample, by: 2, output: input, pool: pool)
            addRowBias(input, Tensor(shape: [1], values: [-1]), pool: pool)
        }
        var h = arena.tensor([n, w.convIn.outChannels, sample.shape[2], sample.shape[3]])
        conv2d(input, weight: w.convIn.weight, bias: w.convIn.bias, stride: 1, padding: .symmetric(1), output: h, pool: pool)
        trace?("conv_in", h)

        var skips = [h]
        // DeepCache's branch: the last up block's resnet whose skip is down block 0's first layer.
        let branch = c.layersPerBlock[0] - 1
        if case let .shallow(kept, firstRow) = cache, let first = w.downBlocks.first, let last = w.upBlocks.last {
            // DeepCache quick_replicate: down block 0's first layer, then the last up block from
            // the branch resnet on, entered with the kept deep feature.
            _ = first.firstLayer(h, timeEmbedding: emb, context: context, skips: &skips, arena: arena, pool: pool, trace: trace)
            h = last(kept.rows(firstRow, count: n), timeEmbedding: emb, context: context, skips: &skips, from: branch,
                     arena: arena, pool: pool, trace: trace)
        } else {
            // 3. down
            for block in w.downBlocks {
                h = block(h, timeEmbedding: emb, context: context, skips: &skips, arena: arena, pool: pool, trace: trace)
            }

            // 4. mid
            if let mid = w.midBlock { h = mid(h, timeEmbedding: emb, context: context, arena: arena, pool: pool, trace: trace) }

            // 5. up (a full cache step keeps the branch resnet's input)
            var keep: ((Int, Tensor) -> Void)?
            if case let .full(kept) = cache { keep = { j, x in if j == branch { kept.keep(x) } } }
            for (i, block) in w.upBlocks.enumerated() {
                h = block(h, timeEmbedding: emb, context: context, skips: &skips,
                          resnetInput: i == w.upBlocks.count - 1 ? keep : nil, arena: arena, pool: pool, trace: trace)
            }
        }
        precondition(skips.isEmpty, "UNet: \(skips.count) skip tensors left over")

        // 6. post-process
        let m = arena.mark()
        let normed = arena.tensor(h.shape)
        groupNorm(h, groups: c.normNumGroups, gamma: w.convNormOut.weight, beta: w.convNormOut.bias,
                  eps: c.normEps, silu: true, output: normed, pool: pool)
        conv2d(normed, weight: w.convOut.weight, bias: w.convOut.bias, stride: 1, padding: .symmetric(1), output: output, pool: pool)
        arena.release(to: m)
    }
}
