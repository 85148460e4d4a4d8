import Foundation
import KernelsAVX512

/// Where the rows of one attention operand live: `rowStride` floats between tokens
/// (≥ heads·headDim; larger when Q, K and V are slices of one fused projection).
public struct AttentionOperand {
    public var data: UnsafePointer<Float>
    public var rowStride: Int
    public init(_ data: UnsafePointer<Float>, rowStride: Int) { self.data = data; self.rowStride = rowStride }
}

/// Query rows per task, and key rows per online-softmax step.
public let attentionQueryTile = 256
public let attentionKeyTile = 512
/// Query rows per task under a causal mask (CLIP's 77 tokens where the short causal path does
/// not take them): a tile reads only the keys up to its last query, so short tiles skip most
/// of the masked half (`walkKeys`).
let causalQueryTile = 16

/// Query rows per task for this mask.
private func queryTile(causal: Bool, queries nq: Int) -> Int {
    min(causal ? causalQueryTile : attentionQueryTile, nq)
}

/// Multi-head scaled dot-product attention, softmax(Q·Kᵀ·scale [+ causal mask])·V, as in
/// diffusers `Attention` / transformers `CLIPAttention`, without ever forming the whole
/// N×N score matrix.
///
/// Method (FlashAttention's online softmax, Dao et al. 2022, Alg. 1): each task takes
/// one (batch, head, block of `attentionQueryTile` queries; `causalQueryTile` under a causal
/// mask) and walks the keys in blocks of `attentionKeyTile`. Per block it computes
/// S = scale·Q·Kᵀ, updates the running row max m and sum l, rescales the partial output by
/// e^(m_old − m_new), and adds e^(S − m_new)·V straight into the output rows; at the end
/// rows are divided by l. The products are sgemm calls, or for head dim 40 (and 64, 80 on
/// AVX-512 CPUs) register-blocked loops over keys packed once per call (AttentionTiles.swift).
/// Scratch per worker: one Tq×Tk score tile, so memory is linear in sequence length. Causal
/// self-attention of at most 128 tokens at head dims of whole 16s (SD's text encoders) runs on
/// AVX-512 CPUs one head per task, its scores transposed (`AVX512ShortCausalAttention`).
/// - Parameters:
///   - query: [B, Nq, heads·headDim]
///   - key, value: [B, Nk, heads·headDim]  (Nk may differ from Nq: cross-attention)
///   - causal: mask key j > query i (CLIP text encoder); needs Nq == Nk
///   - output: [B, Nq, heads·headDim]; must not alias the inputs
public func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int, causal: Bool = false,
                      output: Tensor, pool: ThreadPool) {
    precondition(query.rank == 3 && key.rank == 3 && value.rank == 3 && output.rank == 3,
                 "attention: operands must be [B, N, heads·headDim]")
    let b = query.shape[0], nq = query.shape[1], inner = query.shape[2]
    let nk = key.shape[1]
    precondition(heads >= 1 && inner % heads == 0, "attention: width \(inner) not divisible by \(heads) heads")
    precondition(key.shape == [b, nk, inner] && value.shape == key.shape,
                 "attention: key \(key.shape) / value \(value.shape) do not match query \(query.shape)")
    precondition(output.shape == query.shape, "attention: output \(output.shape) is not \(query.shape)")
    precondition(!causal || nq == nk, "attention: causal mask needs equal query and key lengths")
    attention(query: AttentionOperand(query.data, rowStride: inner),
              key: AttentionOperand(key.data, rowStride: inner),
              value: AttentionOperand(value.data, rowStride: inner),
              output: output.data, outputRowStride: inner,
              batch: b, heads: heads, queryLength: nq, keyLength: nk, headDim: inner / heads,
              causal: causal, scale: 1 / Float(inner / heads).squareRoot(), pool: pool)
}

/// Pointer form of `attention`. Head h of token t in an operand starts at
/// `data + (batch·N + t)·rowStride + h·headDim`.
public func attention(query: AttentionOperand, key: AttentionOperand, value: AttentionOperand,
                      output: UnsafeMutablePointer<Float>, outputRowStride: Int,
                      batch: Int, heads: Int, queryLength nq: Int, keyLength nk: Int, headDim d: Int,
                      causal: Bool, scale: Float, pool: ThreadPool) {
    if nq == 0 || nk == 0 || d == 0 { return }
    #if arch(x86_64)
    if causal && nq == nk && CPUFeatures.useAVX512Kernels && AVX512ShortCausalAttention.takes(tokens: nq, headDim: d) {
        OperatorProfile.measure("attention short-causal \(batch)x\(heads)x\(nq)x\(nk) d\(d)") {
            shortCausalAttention(query, key, value, output, outputRowStride, batch, heads, nq, d, scale, pool)
        }
        return
    }
    #endif
    // The fused path packs keys in the pool's shared scratch, which a nested call (inside a
    // worker) may not take; there sgemm runs inline.
    let fused = fusedAttentionApplies(headDim: d) && !pool.isInsideWorker
    OperatorProfile.measure("attention \(fused ? "fused" : "sgemm") \(batch)x\(heads)x\(nq)x\(nk) d\(d)") {
        (fused ? fusedAttention : sgemmAttention)(query, key, value, output, outputRowStride,
                                                  batch, heads, nq, nk, d, causal, scale, pool)
    }
}

#if arch(x86_64)
/// `attention`'s path for causal self-attention over a short sequence (CLIP's 77 tokens) on
/// AVX-512 CPUs: one task per (batch, head), each head whole (`AVX512ShortCausalAttention`).
private func shortCausalAttention(_ query: AttentionOperand, _ key: AttentionOperand, _ value: AttentionOperand,
                                  _ output: UnsafeMutablePointer<Float>, _ outputRowStride: Int,
                                  _ batch: Int, _ heads: Int, _ n: Int, _ d: Int, _ scale: Float, _ pool: ThreadPool) {
    let floats = AVX512ShortCausalAttention.scratchFloats(tokens: n, headDim: d)
    pool.parallelFor(0..<(batch * heads)) { range, worker in
        let scratch = pool.scratch(worker: worker, count: floats)
        for bh in range {
            let bi = bh / heads, h = bh % heads
            AVX512ShortCausalAttention.head(
                q: query.data + bi * n * query.rowStride + h * d, ldq: query.rowStride,
                k: key.data + bi * n * key.rowStride + h * d, ldk: key.rowStride,
                v: value.data + bi * n * value.rowStride + h * d, ldv: value.rowStride,
                o: output + bi * n * outputRowStride + h * d, ldo: outputRowStride,
                tokens: n, headDim: d, scale: scale, scratch: scratch)
        }
    }
}
#endif

/// `attention` with both products done by sgemm: each task takes one (batch, head, block of
/// `attentionQueryTile` queries) and walks the keys in blocks of `attentionKeyTile`. Per
/// block it computes S = scale·Q·Kᵀ with sgemm, takes the online-softmax step
/// (`onlineSoftmax`), and adds P·V with sgemm straight into the output rows.
private func sgemmAttention(_ query: AttentionOperand, _ key: AttentionOperand, _ value: AttentionOperand,
                            _ output: UnsafeMutablePointer<Float>, _ outputRowStride: Int,
                            _ batch: Int, _ heads: Int, _ nq: Int, _ nk: Int, _ d: Int,
                            _ causal: Bool, _ scale: Float, _ pool: ThreadPool) {
    let tq = queryTile(causal: causal, queries: nq), tk = min(attentionKeyTile, nk)
    let qTiles = (nq + tq - 1) / tq
    pool.parallelFor(0..<(batch * heads * qTiles)) { tasks, worker in
        let scratch = pool.scratch(worker: worker, count: tq * tk + 2 * tq)
        let s = scratch, rowMax = scratch + tq * tk, rowSum = rowMax + tq
        for task in tasks {
            let t = QueryTile(task: task, heads: heads, qTiles: qTiles, tq: tq, nq: nq)
            let q = query.data + (t.bi * nq + t.i0) * query.rowStride + t.h * d
            let kBase = key.data + t.bi * nk * key.rowStride + t.h * d
            let vBase = value.data + t.bi * nk * value.rowStride + t.h * d
            let o = output + (t.bi * nq + t.i0) * outputRowStride + t.h * d
            walkKeys(t, keys: nk, keyTile: tk, causal: causal, s, fixedLds: nil, rowMax: rowMax, rowSum: rowSum,
                     o, ldo: outputRowStride, headDim: d,
                     score: { j0, cols, lds in
                         GEMM.gemm(transB: true, m: t.rows, n: cols, k: d, alpha: scale,
                                   a: q, lda: query.rowStride, b: kBase + j0 * key.rowStride, ldb: key.rowStride,
                                   beta: 0, c: s, ldc: lds)
                         return nil
                     },
                     addValues: { j0, cols, lds in
                         GEMM.gemm(m: t.rows, n: d, k: cols, a: s, lda: lds, b: vBase + j0 * value.rowStride,
                                   ldb: value.rowStride, beta: 1, c: o, ldc: outputRowStride)
                     })
        }
    }
}

/// `attention`'s path for head dims `fusedAttentionApplies` takes (AttentionTiles.swift):
/// the same tiles and online softmax, with the keys of every head packed once into panels
/// and both products done by register-blocked loops instead of sgemm.
private func fusedAttention(_ query: AttentionOperand, _ key: AttentionOperand, _ value: AttentionOperand,
                            _ output: UnsafeMutablePointer<Float>, _ outputRowStride: Int,
                            _ batch: Int, _ heads: Int, _ nq: Int, _ nk: Int, _ d: Int,
                            _ causal: Bool, _ scale: Float, _ pool: ThreadPool) {
    let tq = queryTile(causal: causal, queries: nq), tk = min(attentionKeyTile, nk)
    let strips = (nk + keyPanelWidth - 1) / keyPanelWidth
    let headPanels = strips * keyPanelWidth * d, headPairs = valuePairFloats(keys: nk, headDim: d)
    pool.withSharedScratch(count: batch * heads * (headPanels + headPairs)) { panels in
    let pairs = panels + batch * heads * headPanels
    pool.parallelFor(0..<(batch * heads)) { range, _ in
        for bh in range {
            let bi = bh / heads, h = bh % heads
            packKeyPanels(key.data + bi * nk * key.rowStride + h * d, rowStride: key.rowStride, keys: nk,
                          headDim: d, into: panels + bh * headPanels)
            if headPairs > 0 {
                packValuePairs(value.data + bi * nk * value.rowStride + h * d, rowStride: value.rowStride, keys: nk,
                               into: pairs + bh * headPairs)
            }
        }
    }
    // Score rows are padded to whole strips; tk is a multiple of the strip width or all keys.
    let lds = (tk + keyPanelWidth - 1) / keyPanelWidth * keyPanelWidth
    let qTiles = (nq + tq - 1) / tq
    pool.parallelFor(0..<(batch * heads * qTiles)) { tasks, worker in
        let scratch = pool.scratch(worker: worker, count: tq * lds + 3 * tq + tq * d + tq * keyPanelWidth)
        let s = scratch, rowMax = scratch + tq * lds, rowSum = rowMax + tq, qs = rowSum + tq
        let blockMax = qs + tq * d, lanes = blockMax + tq
        let vScale = VFloat(repeating: scale)
        for task in tasks {
            let t = QueryTile(task: task, heads: heads, qTiles: qTiles, tq: tq, nq: nq)
            let q = query.data + (t.bi * nq + t.i0) * query.rowStride + t.h * d
            for r in 0..<t.rows {
                for c in stride(from: 0, to: d, by: vectorWidth) {
                    vstore(vload(q + r * query.rowStride, c) * vScale, qs + r * d, c)
                }
            }
            let vBase = value.data + t.bi * nk * value.rowStride + t.h * d
            let o = output + (t.bi * nq + t.i0) * outputRowStride + t.h * d
            let headPanel = panels + t.bh * headPanels
            walkKeys(t, keys: nk, keyTile: tk, causal: causal, s, fixedLds: lds, rowMax: rowMax, rowSum: rowSum,
                     o, ldo: outputRowStride, headDim: d,
                     score: { j0, cols, lds in
                         // Each row's block maximum comes with the scores when no key is masked.
                         let filled = scoreTile(qs, rows: t.rows, headDim: d, panels: headPanel + j0 * d,
                                                stripCount: (cols + keyPanelWidth - 1) / keyPanelWidth, s, lds: lds,
                                                keys: cols, rowMax: causal ? nil : blockMax, lanes: causal ? nil : lanes)
                         return filled ? UnsafePointer(blockMax) : nil
                     },
                     addValues: { j0, cols, lds in
                         // Blocks start at 0 or at multiples of the key tile (512), so at an even
                         // key and on a whole pair.
                         let blockPairs = headPairs > 0 ? UnsafePointer(pairs + t.bh * headPairs + j0 * 40) : nil
                         accumulateValues(s, ldp: lds, rows: t.rows, vBase + j0 * value.rowStride, ldv: value.rowStride,
                                          keys: cols, pairs: blockPairs, o, ldo: outputRowStride, headDim: d)
                     })
        }
    }
    }
}

/// One task of either attention path: batch `bi`, head `h`, query rows `i0 ..< i0 + rows`.
private struct QueryTile {
    let bh: Int, bi: Int, h: Int, i0: Int, rows: Int
    init(task: Int, heads: Int, qTiles: Int, tq: Int, nq: Int) {
        bh = task / qTiles
        bi = bh / heads
        h = bh % heads
        i0 = (task % qTiles) * tq
        rows = min(tq, nq - i0)
    }
}

/// One query tile's walk over the keys in blocks of `keyTile` (FlashAttention Alg. 1): per
/// block `score(j0, cols, lds)` writes S = scale·Q·Kᵀ into `s` (row stride lds: `fixedLds`,
/// else cols) and returns each row's largest score where it found them on the way (else
/// nil), the online-softmax step turns S into P, and `addValues(j0, cols, lds)` adds
/// P·V into the output rows; at the end each row is divided by its sum. Under a causal mask
/// no key past the tile's last query is read: later blocks are skipped, the last one cut.
@inline(__always)
private func walkKeys(_ t: QueryTile, keys nk: Int, keyTile tk: Int, causal: Bool, _ s: UnsafeMutablePointer<Float>,
                      fixedLds: Int?, rowMax: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>,
                      _ o: UnsafeMutablePointer<Float>, ldo: Int, headDim d: Int,
                      score: (Int, Int, Int) -> UnsafePointer<Float>?, addValues: (Int, Int, Int) -> Void) {
    for r in 0..<t.rows {
        vzero(o + r * ldo, d)
        rowMax[r] = -.infinity
        rowSum[r] = 0
    }
    var j0 = 0
    while j0 < nk {
        if causal && j0 > t.i0 + t.rows - 1 { break }
        // Causal: no key past the tile's last query (the masked scores would be zeroed, and
        // P·V's zero terms change no sum, so skipping them gives the same result).
        let cols = min(tk, nk - j0, causal ? t.i0 + t.rows - j0 : nk)
        let lds = fixedLds ?? cols
        let blockMax = score(j0, cols, lds)
        onlineSoftmax(s, lds: lds, rows: t.rows, cols: cols, causalFrom: causal ? t.i0 - j0 : nil, blockMax: blockMax,
                      padded: fixedLds != nil, rowMax: rowMax, rowSum: rowSum, o, ldo: ldo, headDim: d)
        addValues(j0, cols, lds)
        j0 += cols
    }
    for r in 0..<t.rows where rowSum[r] > 0 { vscale(o + r * ldo, 1 / rowSum[r], d) }
}

/// One online-softmax step (FlashAttention Alg. 1, lines 9–10) on a score tile: per row, the
/// new running max m over this block's valid columns; the scores become e^(S − m) (columns
/// past the valid ones 0); the partial output row is rescaled by e^(m_old − m) and the
/// running sum updated. `causalFrom` is i0 − j0 (first query row minus first key of the
/// block) under a causal mask: row r sees columns 0...r + causalFrom. `blockMax`, when
/// given, holds each row's maximum over the block (no causal mask), so the row is not scanned.
/// `padded`: rows are padded to whole 16-key strips (`fixedLds`, the fused path), so the row
/// passes may read and overwrite a partial last vector whole (AVX512Softmax).
@inline(__always)
private func onlineSoftmax(_ s: UnsafeMutablePointer<Float>, lds: Int, rows: Int, cols: Int, causalFrom: Int?,
                           blockMax precomputed: UnsafePointer<Float>?, padded: Bool,
                           rowMax: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>,
                           _ o: UnsafeMutablePointer<Float>, ldo: Int, headDim d: Int) {
    for r in 0..<rows {
        let srow = s + r * lds
        // Causal: keys j ≤ i are visible, i.e. the first `valid` columns.
        let valid = causalFrom.map { max(0, min(cols, r + $0 + 1)) } ?? cols
        let blockMax = precomputed?[r] ?? softmaxRowMax(srow, valid, padded: padded)
        let newMax = max(rowMax[r], blockMax)
        if newMax == -.infinity {
            srow.update(repeating: 0, count: cols)
            continue
        }
        let sum = softmaxExpShiftedSum(srow, valid, shift: newMax, padded: padded)
        if valid < cols { (srow + valid).update(repeating: 0, count: cols - valid) }
        let correction = rowMax[r] == -.infinity ? 0 : fastExp(rowMax[r] - newMax)
        if correction != 1 && rowSum[r] != 0 { vscale(o + r * ldo, correction, d) }
        rowSum[r] = rowSum[r] * correction + sum
        rowMax[r] = newMax
    }
}

/// max x[i] over i < n: `onlineSoftmax`'s first row pass, at 16 lanes where the AVX-512
/// kernels run (`padded` as there).
@inline(__always)
private func softmaxRowMax(_ x: UnsafePointer<Float>, _ n: Int, padded: Bool) -> Float {
    #if arch(x86_64)
    if CPUFeatures.useAVX512Kernels { return AVX512Softmax.maximum(x, n, padded: padded) }
    #endif
    return vmax(x, n)
}

/// x[i] = e^(x[i] − shift) for i < n, returning their sum: `onlineSoftmax`'s second pass.
@inline(__always)
private func softmaxExpShiftedSum(_ x: UnsafeMutablePointer<Float>, _ n: Int, shift: Float, padded: Bool) -> Float {
    #if arch(x86_64)
    if CPUFeatures.useAVX512Kernels { return AVX512Softmax.expShiftedSum(x, n, shift: shift, padded: padded) }
    #endif
    let vm = VFloat(repeating: shift)
    var acc = VFloat()
    var j = 0
    while j + 8 <= n { let e = vexp(vload(x, j) - vm); vstore(e, x, j); acc += e; j += 8 }
    var sum = acc.sum()
    while j < n { let e = fastExp(x[j] - shift); x[j] = e; sum += e; j += 1 }
    return sum
}

/// FLOPs of one attention call (two GEMMs; softmax ignored): 4·B·heads·Nq·Nk·headDim.
public func attentionFlops(batch: Int, heads: Int, queryLength: Int, keyLength: Int, headDim: Int) -> Double {
    4 * Double(batch * heads) * Double(queryLength) * Double(keyLength) * Double(headDim)
}
