import Kernels

/// diffusers `Transformer2DModel` as used by SD 1.x / 2.x UNets:
/// h = proj_in(GroupNorm(x)) laid out as [N, H·W, inner]; BasicTransformerBlock × depth;
/// out = proj_out(h) back to [N, C, H, W] + x. proj_in/proj_out are 1×1 convs
/// (`use_linear_projection=False`, SD 1.x) or Linear layers (SD 2.x): the same product,
/// so both load into [out, in] matrices and run as transposing GEMMs, which also does the
/// NCHW ↔ tokens permutation for free. GroupNorm eps is 1e-6 (fixed in diffusers).
struct SpatialTransformer: @unchecked Sendable {
    /// GroupNorm [channels]
    var norm: NormWeights
    /// [inner, channels] (conv weight [inner, channels, 1, 1] squeezed) + bias
    var projIn: LinearWeights
    var blocks: [TransformerBlock]
    /// [channels, inner] + bias
    var projOut: LinearWeights
    let groups: Int

    init(_ s: WeightSource, _ p: String, channels c: Int, heads: Int, depth: Int,
         crossAttentionDim: Int, groups: Int) throws {
        self.groups = groups
        norm = try NormWeights(s, p + ".norm", channels: c)
        // Checkpoints store [inner, c, 1, 1] for conv projections; the source accepts either layout.
        projIn = try LinearWeights(s, p + ".proj_in", in: c, out: c)
        blocks = try (0..<depth).map {
            try TransformerBlock(s, p + ".transformer_blocks.\($0)", dim: c, heads: heads, crossAttentionDim: crossAttentionDim)
        }
        projOut = try LinearWeights(s, p + ".proj_out", in: c, out: c)
    }

    /// - Parameters:
    ///   - x: [N, C, H, W]
    ///   - context: [N, Lc, crossAttentionDim]
    ///   - output: [N, C, H, W]; must not alias x
    func callAsFunction(_ x: Tensor, context: Tensor, output: Tensor, arena: Arena, pool: ThreadPool) {
        let n = x.shape[0], c = x.shape[1], hw = x.shape[2] * x.shape[3]
        let inner = projIn.outFeatures
        let mark = arena.mark()
        defer { arena.release(to: mark) }
        let tokens = arena.tensor([n, hw, inner])
        do {
            let m = arena.mark()
            let normed = arena.tensor(x.shape)
            groupNorm(x, groups: groups, gamma: norm.weight, beta: norm.bias, eps: 1e-6, output: normed, pool: pool)
            // tokens_b[hw, inner] = normed_bᵀ[hw, c] · W_inᵀ[c, inner]
            OperatorProfile.measure("linear proj_in \(n)x\(c)x\(hw)->\(inner)") {
                for b in 0..<n {
                    GEMM.parallelGemm(transA: true, transB: true, m: hw, n: inner, k: c,
                                      a: .f32(normed.data + b * c * hw), lda: hw, b: projIn.weight.operand, ldb: c,
                                      beta: 0, c: tokens.data + b * hw * inner, ldc: inner, pool: pool)
                }
            }
            if let bias = projIn.bias { addRowBias(tokens, bias, pool: pool) }
            arena.release(to: m)
        }
        for block in blocks { block(tokens, context: context, arena: arena, pool: pool) }
        // output_b[c, hw] = x_b + bias + W_out[c, inner] · tokens_bᵀ[inner, hw]
        if let bias = projOut.bias { addChannelBias(x, bias, output: output, pool: pool) } else { output.copy(from: x) }
        OperatorProfile.measure("linear proj_out \(n)x\(hw)x\(inner)->\(c)") {
            for b in 0..<n {
                GEMM.parallelGemm(transA: false, transB: true, m: c, n: hw, k: inner,
                                  a: projOut.weight.operand, lda: inner, b: .f32(tokens.data + b * hw * inner), ldb: inner,
                                  beta: 1, c: output.data + b * c * hw, ldc: hw, pool: pool)
            }
        }
    }

    func flops(n: Int, hw: Int, contextLength: Int) -> Double {
        projIn.flops(rows: n * hw) + projOut.flops(rows: n * hw)
            + blocks.reduce(0) { $0 + $1.flops(n: n, l: hw, contextLength: contextLength) }
    }
}
