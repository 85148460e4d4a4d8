import Kernels

/// diffusers `BasicTransformerBlock` (norm_type "layer_norm", GEGLU feed-forward):
/// h += attn1(LN1(h)) (self-attention); h += attn2(LN2(h), context) (cross-attention);
/// h += FF(LN3(h)), FF = Linear(ff→dim)(GEGLU(Linear(dim→2·ff))). Attention projections
/// have no bias (`attention_bias=False`), `to_out.0` has one; scale = head_dim^−½.
struct TransformerBlock: @unchecked Sendable {
    /// LayerNorm [dim]
    var norm1: NormWeights
    /// to_q, to_k, to_v stacked: [3·dim, dim], no bias
    var selfQKV: LinearWeights
    /// to_out.0: [dim, dim] + bias
    var selfOut: LinearWeights
    /// LayerNorm [dim]
    var norm2: NormWeights
    /// to_q: [dim, dim], no bias
    var crossQ: LinearWeights
    /// to_k, to_v stacked: [2·dim, crossAttentionDim], no bias
    var crossKV: LinearWeights
    /// to_out.0: [dim, dim] + bias
    var crossOut: LinearWeights
    /// LayerNorm [dim]
    var norm3: NormWeights
    /// ff.net.0.proj (GEGLU): [2·ff, dim] + bias, first half value, second half gate
    var ffIn: LinearWeights
    /// ff.net.2: [dim, ff] + bias
    var ffOut: LinearWeights
    let heads: Int
    let dim: Int

    init(_ s: WeightSource, _ p: String, dim: Int, heads: Int, crossAttentionDim: Int) throws {
        self.dim = dim
        self.heads = heads
        let ff = dim * 4
        norm1 = try NormWeights(s, p + ".norm1", channels: dim)
        // Every linear layer here is read by `linear` / `linearAccumulate` only: packed at load.
        selfQKV = LinearWeights.concatenating(try ["to_q", "to_k", "to_v"].map {
            try LinearWeights(s, p + ".attn1." + $0, in: dim, out: dim, bias: false)
        }, source: s, packed: true)
        selfOut = try LinearWeights(s, p + ".attn1.to_out.0", in: dim, out: dim).packedForProducts(source: s)
        norm2 = try NormWeights(s, p + ".norm2", channels: dim)
        crossQ = try LinearWeights(s, p + ".attn2.to_q", in: dim, out: dim, bias: false).packedForProducts(source: s)
        crossKV = LinearWeights.concatenating(try ["to_k", "to_v"].map {
            try LinearWeights(s, p + ".attn2." + $0, in: crossAttentionDim, out: dim, bias: false)
        }, source: s, packed: true)
        crossOut = try LinearWeights(s, p + ".attn2.to_out.0", in: dim, out: dim).packedForProducts(source: s)
        norm3 = try NormWeights(s, p + ".norm3", channels: dim)
        ffIn = try LinearWeights(s, p + ".ff.net.0.proj", in: dim, out: 2 * ff).packedForProducts(source: s)
        ffOut = try LinearWeights(s, p + ".ff.net.2", in: ff, out: dim).packedForProducts(source: s)
    }

    /// Rows of the feed-forward processed at once, bounding its [rows, 2·ff] temporary.
    static let feedForwardRows = 2048

    /// - Parameters:
    ///   - h: [N, L, dim], updated in place
    ///   - context: [N, Lc, crossAttentionDim]
    func callAsFunction(_ h: Tensor, context: Tensor, arena: Arena, pool: ThreadPool) {
        let n = h.shape[0], l = h.shape[1], lc = context.shape[1]
        let mark = arena.mark()
        defer { arena.release(to: mark) }
        let normed = arena.tensor([n, l, dim])
        let attended = arena.tensor([n, l, dim])
        let headDim = dim / heads
        let scale = 1 / Float(headDim).squareRoot()

        // Self-attention on fused Q|K|V rows.
        do {
            let inner = arena.mark()
            layerNorm(h, gamma: norm1.weight, beta: norm1.bias, eps: 1e-5, output: normed, pool: pool)
            let qkv = arena.tensor([n, l, 3 * dim])
            linear(normed, weight: selfQKV.weight, bias: selfQKV.bias, output: qkv, pool: pool)
            attention(query: AttentionOperand(qkv.data, rowStride: 3 * dim),
                      key: AttentionOperand(qkv.data + dim, rowStride: 3 * dim),
                      value: AttentionOperand(qkv.data + 2 * dim, rowStride: 3 * dim),
                      output: attended.data, outputRowStride: dim, batch: n, heads: heads,
                      queryLength: l, keyLength: l, headDim: headDim, causal: false, scale: scale, pool: pool)
            linearAccumulate(attended, selfOut, into: h, pool: pool)
            arena.release(to: inner)
        }
        // Cross-attention to the text context.
        do {
            let inner = arena.mark()
            layerNorm(h, gamma: norm2.weight, beta: norm2.bias, eps: 1e-5, output: normed, pool: pool)
            let q = arena.tensor([n, l, dim])
            linear(normed, weight: crossQ.weight, bias: crossQ.bias, output: q, pool: pool)
            let kv = arena.tensor([n, lc, 2 * dim])
            linear(context, weight: crossKV.weight, bias: crossKV.bias, output: kv, pool: pool)
            attention(query: AttentionOperand(q.data, rowStride: dim),
                      key: AttentionOperand(kv.data, rowStride: 2 * dim),
                      value: AttentionOperand(kv.data + dim, rowStride: 2 * dim),
                      output: attended.data, outputRowStride: dim, batch: n, heads: heads,
                      queryLength: l, keyLength: lc, headDim: headDim, causal: false, scale: scale, pool: pool)
            linearAccumulate(attended, crossOut, into: h, pool: pool)
            arena.release(to: inner)
        }
        // GEGLU feed-forward, in row chunks (rows are independent).
        layerNorm(h, gamma: norm3.weight, beta: norm3.bias, eps: 1e-5, output: normed, pool: pool)
        let rows = n * l, ff = ffOut.inFeatures
        let chunk = min(rows, TransformerBlock.feedForwardRows)
        let projected = arena.tensor([chunk, 2 * ff])
        let gated = arena.tensor([chunk, ff])
        var r0 = 0
        while r0 < rows {
            let r = min(chunk, rows - r0)
            let x = normed.view(offset: r0 * dim, shape: [r, dim])
            let p = projected.view(offset: 0, shape: [r, 2 * ff])
            let g = gated.view(offset: 0, shape: [r, ff])
            linear(x, weight: ffIn.weight, bias: ffIn.bias, output: p, pool: pool)
            OperatorProfile.measure("geglu \(r)x\(2 * ff)") { geglu(p, output: g, pool: pool) }
            linearAccumulate(g, ffOut, into: h.view(offset: r0 * dim, shape: [r, dim]), pool: pool)
            r0 += r
        }
    }

    /// Floating-point operations for one call.
    func flops(n: Int, l: Int, contextLength lc: Int) -> Double {
        let rows = n * l
        var f = selfQKV.flops(rows: rows) + selfOut.flops(rows: rows) + crossQ.flops(rows: rows)
        f += crossKV.flops(rows: n * lc) + crossOut.flops(rows: rows) + ffIn.flops(rows: rows) + ffOut.flops(rows: rows)
        f += attentionFlops(batch: n, heads: heads, queryLength: l, keyLength: l, headDim: dim / heads)
        f += attentionFlops(batch: n, heads: heads, queryLength: l, keyLength: lc, headDim: dim / heads)
        return f
    }
}
