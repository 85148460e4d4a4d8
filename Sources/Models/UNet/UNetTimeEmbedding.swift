import Kernels

/// diffusers `Timesteps` (`time_proj`, the sinusoidal embedding, no weights) followed by
/// `TimestepEmbedding` (`time_embedding`: linear_1 → SiLU → linear_2).
struct UNetTimeEmbedding: @unchecked Sendable {
    /// time_embedding.linear_1: [timeEmbeddingDim, block0]
    var linear1: LinearWeights
    /// time_embedding.linear_2: [timeEmbeddingDim, timeEmbeddingDim]
    var linear2: LinearWeights
    /// Width of the sinusoid (`block_out_channels[0]`).
    let sinusoidDim: Int
    let flipSinToCos: Bool
    let freqShift: Float

    init(_ s: WeightSource, config c: UNetConfig) throws {
        let ch0 = c.blockOutChannels[0]
        linear1 = try LinearWeights(s, "time_embedding.linear_1", in: ch0, out: c.timeEmbedding.dimension)
        linear2 = try LinearWeights(s, "time_embedding.linear_2", in: c.timeEmbedding.dimension, out: c.timeEmbedding.dimension)
        sinusoidDim = ch0
        flipSinToCos = c.timeEmbedding.flipSinToCos
        freqShift = c.timeEmbedding.freqShift
    }

    /// Embeds one timestep per batch element. Returns SiLU(emb + aug), [N, timeEmbeddingDim]:
    /// every resnet applies SiLU to the embedding first, so it is done once here, after
    /// SDXL's `aug_emb` (`UNetAdditionEmbedding`, [N, timeEmbeddingDim]) is added as diffusers'
    /// `UNet2DConditionModel.forward` does (`emb = emb + aug_emb`, before any activation). The
    /// time embedding alone (diffusers' `time_embedding` output) is traced as "time_embedding".
    /// All tensors stay in the arena (the returned one is read by every resnet).
    func callAsFunction(_ timesteps: [Float], adding aug: Tensor? = nil, arena: Arena, pool: ThreadPool,
                        trace: ((String, Tensor) -> Void)?) -> Tensor {
        let n = timesteps.count, dim = linear2.outFeatures
        let sinusoid = arena.tensor([n, sinusoidDim])
        timestepEmbedding(timesteps, dim: sinusoidDim, flipSinToCos: flipSinToCos, downscaleFreqShift: freqShift,
                          output: sinusoid)
        let hidden = arena.tensor([n, dim])
        linear(sinusoid, weight: linear1.weight, bias: linear1.bias, output: hidden, pool: pool)
        activate(.silu, hidden, output: hidden, pool: pool)
        let emb = arena.tensor([n, dim])
        linear(hidden, weight: linear2.weight, bias: linear2.bias, output: emb, pool: pool)
        trace?("time_embedding", emb)
        if let aug {
            let sum = arena.tensor([n, dim])
            add(emb, aug, output: sum, pool: pool)
            activate(.silu, sum, output: sum, pool: pool)
            return sum
        }
        activate(.silu, emb, output: emb, pool: pool)
        return emb
    }

    /// Floating-point operations for a batch of `n`.
    func flops(n: Int) -> Double { linear1.flops(rows: n) + linear2.flops(rows: n) }
}
