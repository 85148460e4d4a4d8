import Kernels

/// The single-head self-attention in the VAE's mid block (diffusers `Attention` with
/// `heads = 1`, `residual_connection=True`, biased projections, GroupNorm first, eps 1e-6):
/// out = x + to_out(softmax(QKᵀ/√C)·V), tokens = the H·W pixels.
struct VAEAttention: @unchecked Sendable {
    /// group_norm: [C]
    var norm: NormWeights
    /// to_q, to_k, to_v stacked: [3C, C] + bias (older checkpoints: query/key/value)
    var qkv: LinearWeights
    /// to_out.0: [C, C] + bias (older checkpoints: proj_attn)
    var out: LinearWeights
    let groups: Int

    init(_ s: WeightSource, _ p: String, channels c: Int, groups: Int) throws {
        self.groups = groups
        norm = try NormWeights(s, p + ".group_norm", channels: c)
        qkv = LinearWeights.concatenating([
            try LinearWeights(s, p + ".to_q", in: c, out: c, alternatives: [p + ".query"]),
            try LinearWeights(s, p + ".to_k", in: c, out: c, alternatives: [p + ".key"]),
            try LinearWeights(s, p + ".to_v", in: c, out: c, alternatives: [p + ".value"]),
        ], source: s)
        out = try LinearWeights(s, p + ".to_out.0", in: c, out: c, alternatives: [p + ".proj_attn"])
    }

    /// x: [N, C, H, W] → output (same shape, must not alias x).
    func callAsFunction(_ x: Tensor, output: Tensor, arena: Arena, pool: ThreadPool) {
        let n = x.shape[0], c = x.shape[1], hw = x.shape[2] * x.shape[3]
        let mark = arena.mark()
        defer { arena.release(to: mark) }
        let tokens = arena.tensor([n, hw, 3 * c])
        let attended = arena.tensor([n, hw, c])
        do {
            let m = arena.mark()
            let normed = arena.tensor(x.shape)
            groupNorm(x, groups: groups, gamma: norm.weight, beta: norm.bias, eps: 1e-6, output: normed, pool: pool)
            OperatorProfile.measure("linear qkv \(n)x\(c)x\(hw)->\(3 * c)") {
                for b in 0..<n {
                    GEMM.parallelGemm(transA: true, transB: true, m: hw, n: 3 * c, k: c,
                                      a: .f32(normed.data + b * c * hw), lda: hw, b: qkv.weight.operand, ldb: c,
                                      beta: 0, c: tokens.data + b * hw * 3 * c, ldc: 3 * c, pool: pool)
                }
            }
            if let bias = qkv.bias { addRowBias(tokens, bias, pool: pool) }
            arena.release(to: m)
        }
        attention(query: AttentionOperand(tokens.data, rowStride: 3 * c),
                  key: AttentionOperand(tokens.data + c, rowStride: 3 * c),
                  value: AttentionOperand(tokens.data + 2 * c, rowStride: 3 * c),
                  output: attended.data, outputRowStride: c, batch: n, heads: 1,
                  queryLength: hw, keyLength: hw, headDim: c, causal: false,
                  scale: 1 / Float(c).squareRoot(), pool: pool)
        if let bias = out.bias { addChannelBias(x, bias, output: output, pool: pool) } else { output.copy(from: x) }
        OperatorProfile.measure("linear out \(n)x\(hw)x\(c)->\(c)") {
            for b in 0..<n {
                GEMM.parallelGemm(transA: false, transB: true, m: c, n: hw, k: c,
                                  a: out.weight.operand, lda: c, b: .f32(attended.data + b * hw * c), ldb: c,
                                  beta: 1, c: output.data + b * c * hw, ldc: hw, pool: pool)
            }
        }
    }

    func flops(n: Int, hw: Int) -> Double {
        let c = out.inFeatures
        return qkv.flops(rows: n * hw) + out.flops(rows: n * hw)
            + attentionFlops(batch: n, heads: 1, queryLength: hw, keyLength: hw, headDim: c)
    }
}

/// `UNetMidBlock2D` of the VAE: resnet → attention → resnet (no time embedding).
struct VAEMidBlock: @unchecked Sendable {
    var resnet0: ResnetBlock
    var attention: VAEAttention?
    var resnet1: ResnetBlock

    init(_ s: WeightSource, _ p: String, channels c: Int, groups: Int, eps: Float, withAttention: Bool) throws {
        resnet0 = try ResnetBlock(s, p + ".resnets.0", in: c, out: c, timeEmbedding: nil, groups: groups, eps: eps)
        attention = withAttention ? try VAEAttention(s, p + ".attentions.0", channels: c, groups: groups) : nil
        resnet1 = try ResnetBlock(s, p + ".resnets.1", in: c, out: c, timeEmbedding: nil, groups: groups, eps: eps)
    }

    func callAsFunction(_ x: Tensor, output: Tensor, arena: Arena, pool: ThreadPool) {
        let mark = arena.mark()
        defer { arena.release(to: mark) }
        let a = arena.tensor(x.shape)
        resnet0(x, timeEmbedding: nil, output: a, arena: arena, pool: pool)
        var cur = a
        if let attention {
            let b = arena.tensor(x.shape)
            attention(a, output: b, arena: arena, pool: pool)
            cur = b
        }
        resnet1(cur, timeEmbedding: nil, output: output, arena: arena, pool: pool)
    }
}
