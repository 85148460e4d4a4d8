import Kernels

/// SDXL's extra UNet inputs: diffusers' `added_cond_kwargs` of `UNet2DConditionModel.forward`
/// for a UNet whose config has `addition_embed_type: "text_time"` (`UNetConfig.additionEmbedding`).
/// One row per batch element, in the same order as the latents and the text states (under
/// classifier-free guidance: the unconditional rows, then the conditional ones).
public struct UNetAdditionalConditioning: @unchecked Sendable {
    /// `text_embeds`: [N, P], the pooled text embedding (`text_encoder_2`'s projected
    /// `text_embeds`; zeros for an absent negative prompt under `force_zeros_for_empty_prompt`).
    /// P + K · `addition_time_embed_dim` must equal `projection_class_embeddings_input_dim`.
    public var textEmbeds: Tensor
    /// `time_ids`: [N, K] (K = 6 in StableDiffusionXLPipeline: original height, width, crop
    /// top, left, target height, width, in pixels; by default (h, w, 0, 0, h, w)).
    public var timeIDs: Tensor

    public init(textEmbeds: Tensor, timeIDs: Tensor) {
        self.textEmbeds = textEmbeds
        self.timeIDs = timeIDs
    }
}

/// diffusers `UNet2DConditionModel.get_aug_embed` for `addition_embed_type: "text_time"`:
/// `add_time_proj` (`Timesteps(addition_time_embed_dim, flip_sin_to_cos, freq_shift)`, no
/// weights) on every time id, concatenated after `text_embeds`, then `add_embedding`
/// (`TimestepEmbedding`: linear_1 → SiLU → linear_2) to the timestep embedding's width.
struct UNetAdditionEmbedding: @unchecked Sendable {
    /// add_embedding.linear_1: [timeEmbeddingDim, projection_class_embeddings_input_dim]
    var linear1: LinearWeights
    /// add_embedding.linear_2: [timeEmbeddingDim, timeEmbeddingDim]
    var linear2: LinearWeights
    /// `addition_time_embed_dim`
    let timeEmbedDim: Int
    let flipSinToCos: Bool
    let freqShift: Float

    init(_ s: WeightSource, config c: UNetConfig, addition a: UNetAdditionEmbeddingConfig) throws {
        linear1 = try LinearWeights(s, "add_embedding.linear_1", in: a.inputDim, out: c.timeEmbedding.dimension)
        linear2 = try LinearWeights(s, "add_embedding.linear_2", in: c.timeEmbedding.dimension, out: c.timeEmbedding.dimension)
        timeEmbedDim = a.timeEmbedDim
        flipSinToCos = c.timeEmbedding.flipSinToCos
        freqShift = c.timeEmbedding.freqShift
    }

    /// Checks `added` against this embedding for a batch of `n` (a mismatch is a caller's bug,
    /// like a wrong latent shape).
    func validate(_ added: UNetAdditionalConditioning, batch n: Int) {
        let t = added.textEmbeds, ids = added.timeIDs
        precondition(t.rank == 2 && t.shape[0] == n && ids.rank == 2 && ids.shape[0] == n,
                     "UNet: text_embeds \(t.shape) / time_ids \(ids.shape) are not [\(n), P] / [\(n), K]")
        precondition(t.shape[1] + ids.shape[1] * timeEmbedDim == linear1.inFeatures,
                     "UNet: text_embeds width \(t.shape[1]) + \(ids.shape[1]) time ids × \(timeEmbedDim) ≠ "
                        + "projection_class_embeddings_input_dim \(linear1.inFeatures)")
    }

    /// `aug_emb` = add_embedding(cat(text_embeds, add_time_proj(time_ids).reshape(N, −1))),
    /// [N, timeEmbeddingDim], in the arena; traced as "add_embedding".
    func callAsFunction(_ added: UNetAdditionalConditioning, arena: Arena, pool: ThreadPool,
                        trace: ((String, Tensor) -> Void)?) -> Tensor {
        let n = added.textEmbeds.shape[0], p = added.textEmbeds.shape[1], k = added.timeIDs.shape[1]
        let width = linear1.inFeatures, dim = linear2.outFeatures
        let input = arena.tensor([n, width])
        let ids = added.timeIDs.toArray()
        let sinusoids = arena.tensor([n * k, timeEmbedDim])
        timestepEmbedding(ids, dim: timeEmbedDim, flipSinToCos: flipSinToCos, downscaleFreqShift: freqShift, output: sinusoids)
        for b in 0..<n {
            let row = input.data + b * width
            row.update(from: added.textEmbeds.data + b * p, count: p)
            (row + p).update(from: sinusoids.data + b * k * timeEmbedDim, count: k * timeEmbedDim)
        }
        let hidden = arena.tensor([n, dim])
        linear(input, weight: linear1.weight, bias: linear1.bias, output: hidden, pool: pool)
        activate(.silu, hidden, output: hidden, pool: pool)
        let aug = arena.tensor([n, dim])
        linear(hidden, weight: linear2.weight, bias: linear2.bias, output: aug, pool: pool)
        trace?("add_embedding", aug)
        return aug
    }

    /// Floating-point operations for a batch of `n`.
    func flops(n: Int) -> Double { linear1.flops(rows: n) + linear2.flops(rows: n) }
}
