import Kernels

/// diffusers `Transformer2DModel` as used by SD 1.x / 2.x UNets:
/// h = proj_in(GroupNorm(x)) laid out as [N, H·W, inner]; BasicTransformerBlock × depth;
/// out = proj_out(h) back to [N, C, H, W] + x. proj_in/proj_out are 1×1 convs
/// (`use_linear_projection=False`, SD 1.x) or Linear layers (SD 2.x): the same product,
/// so both load into [out, in] matrices. With weights packed for the AVX-512 product they run
/// as token-major linear layers between `transpose` passes (the NCHW ↔ tokens permutation);
/// otherwise as transposing GEMMs, which permute for free. GroupNorm eps is 1e-6 (fixed in
/// diffusers).
struct SpatialTransformer: @unchecked Sendable {
    /// GroupNorm [channels]
    var norm: NormWeights
    /// [inner, channels] (conv weight [inner, channels, 1, 1] squeezed) + bias
    var projIn: LinearWeights
    var blocks: [TransformerBlock]
    /// [channels, inner] + bias
    var projOut: LinearWeights
    let groups: Int

    /// Fewest channels whose `proj_in` / `proj_out` run as token-major packed products between
    /// `transpose` passes; narrower ones stay on the transposing sgemm. Measured per operator
    /// (`diffusion-bench unet --profile`, SD 1.5, a 2-core Xeon without AMX, 2026-12-07, old
    /// and new builds alternately): 1280 channels gained (256², batch 1: 14.4 → 10.9 ms per
    /// evaluation for the four of them; 512², batch 2: 76.7 → 63.3 ms), 640 were level (4.9–5.4 →
    /// 4.7–4.9 ms at 256², batch 1; 31–32 → 34–35 ms at 512², batch 2), 320 lost (4.8–5.0 → 6.6–6.7 ms;
    /// 33 → 42 ms at 4096 tokens, where the transposes of 10 MB miss L2).
    static let packedProjectionChannels = 1024

    init(_ s: WeightSource, _ p: String, channels c: Int, heads: Int, depth: Int,
         crossAttentionDim: Int, groups: Int) throws {
        self.groups = groups
        norm = try NormWeights(s, p + ".norm", channels: c)
        // Wide ones packed where the AVX-512 product runs (`callAsFunction` and `projectOut`
        // then read them only through it).
        let pack = c >= SpatialTransformer.packedProjectionChannels
        // Checkpoints store [inner, c, 1, 1] for conv projections; the source accepts either layout.
        projIn = try LinearWeights(s, p + ".proj_in", in: c, out: c)
        if pack { projIn = projIn.packedForProducts(source: s) }
        blocks = try (0..<depth).map {
            try TransformerBlock(s, p + ".transformer_blocks.\($0)", dim: c, heads: heads, crossAttentionDim: crossAttentionDim)
        }
        projOut = try LinearWeights(s, p + ".proj_out", in: c, out: c)
        if pack { projOut = projOut.packedForProducts(source: s) }
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
            OperatorProfile.measure("linear proj_in \(n)x\(c)x\(hw)->\(inner)") {
                if PackedLinear.panels(of: projIn.weight.operand, inFeatures: c, outFeatures: inner) != nil {
                    // Token-major first, then the packed product with its bias (see `projectOut`).
                    let rows = arena.tensor([n, hw, c])
                    transpose(normed.data, rows: c, cols: hw, count: n, into: rows.data, pool: pool)
                    linearProduct(rows.data, rows: n * hw, inFeatures: c, weight: projIn.weight.operand,
                                  bias: projIn.bias?.data, outFeatures: inner, output: tokens.data, accumulate: false,
                                  pool: pool)
                    return
                }
                // tokens_b[hw, inner] = normed_bᵀ[hw, c] · W_inᵀ[c, inner]
                for b in 0..<n {
                    GEMM.parallelGemm(transA: true, transB: true, m: hw, n: inner, k: c,
                                      a: .f32(normed.data + b * c * hw), lda: hw, b: projIn.weight.operand, ldb: c,
                                      beta: 0, c: tokens.data + b * hw * inner, ldc: inner, pool: pool)
                }
                if let bias = projIn.bias { addRowBias(tokens, bias, pool: pool) }
            }
            arena.release(to: m)
        }
        for block in blocks { block(tokens, context: context, arena: arena, pool: pool) }
        OperatorProfile.measure("linear proj_out \(n)x\(hw)x\(inner)->\(c)") {
            projectOut(tokens, residual: x, output: output, arena: arena, pool: pool)
        }
    }

    /// output[N, C, H, W] = x + proj_out(tokens) laid back out channel-major. A weight packed
    /// for the AVX-512 (or AMX) product (`packedProjectionChannels`) takes the tokens as they
    /// are, the bias in its accumulators, then one transposing pass adds the residual; any other
    /// runs sgemm straight into the channel-major output (x + bias first, accumulated with
    /// beta = 1), where OpenBLAS ran the 1280-channel projections at 160–235 GFLOP/s and the
    /// packed product at 210–280 (docs/BENCHMARKS.md, 2026-12-07).
    private func projectOut(_ tokens: Tensor, residual x: Tensor, output: Tensor, arena: Arena, pool: ThreadPool) {
        let n = x.shape[0], c = x.shape[1], hw = x.shape[2] * x.shape[3], inner = projOut.inFeatures
        if PackedLinear.panels(of: projOut.weight.operand, inFeatures: inner, outFeatures: c) != nil {
            let m = arena.mark()
            defer { arena.release(to: m) }
            let projected = arena.tensor([n, hw, c])
            linearProduct(tokens.data, rows: n * hw, inFeatures: inner, weight: projOut.weight.operand,
                          bias: projOut.bias?.data, outFeatures: c, output: projected.data, accumulate: false, pool: pool)
            transpose(projected.data, rows: hw, cols: c, count: n, adding: x.data, into: output.data, pool: pool)
            return
        }
        // output_b[c, hw] = x_b + bias + W_out[c, inner] · tokens_bᵀ[inner, hw]
        if let bias = projOut.bias { addChannelBias(x, bias, output: output, pool: pool) } else { output.copy(from: x) }
        for b in 0..<n {
            GEMM.parallelGemm(transA: false, transB: true, m: c, n: hw, k: inner,
                              a: projOut.weight.operand, lda: inner, b: .f32(tokens.data + b * hw * inner), ldb: inner,
                              beta: 1, c: output.data + b * c * hw, ldc: hw, pool: pool)
        }
    }

    func flops(n: Int, hw: Int, contextLength: Int) -> Double {
        projIn.flops(rows: n * hw) + projOut.flops(rows: n * hw)
            + blocks.reduce(0) { $0 + $1.flops(n: n, l: hw, contextLength: contextLength) }
    }
}
