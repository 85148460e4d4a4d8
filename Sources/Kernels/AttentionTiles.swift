import KernelsAVX512

/// The register-blocked inner loops of `attention`'s fused path (Attention.swift), for head
/// dim 40: SD 1.x's self- and cross-attention at the 320-channel level (8 heads), the
/// largest attention of an SD 1.x UNet (4096 tokens at 512²). There both products are thin
/// (k = 40 for Q·Kᵀ, n = 40 for P·V), and OpenBLAS spends much of each call packing
/// operands it then uses briefly: the score tile P alone is re-packed for every P·V call.
/// Here keys are packed once per call into 16-wide panels, and P·V reads the softmax output
/// and V where they lie, so nothing is packed per tile.
///
/// Measured with `diffusion-bench kernels --only attention` (one thread, alternating with
/// the sgemm path, 2026-12-04): head dim 40 15% faster (4096² and 4096×77); head dims 64 and
/// 80 no faster (64) or slower (80, two 40-column passes over P), so they keep sgemm on AVX2.
/// On AVX-512 CPUs both products run in KernelsAVX512, which also has a head-dim-64 value
/// tile: there head dim 64 is fused too (1.7× faster at 4096², 2026-12-05).

/// Keys per panel strip: two vectors (one with AVX-512, whose kernels take the same panels).
let keyPanelWidth = 16

/// Whether `attention` takes the fused path for this head dim: 40, and with the AVX-512
/// kernels also 64 (SD 2.x, SD-Turbo, SDXL, CLIP ViT-L), whose value tile only they have.
func fusedAttentionApplies(headDim d: Int) -> Bool {
    #if arch(x86_64)
    if CPUFeatures.useAVX512Kernels && AVX512AttentionTiles.hasValueTile(headDim: d) { return true }
    #endif
    return d == 40
}

/// Packs `keys` rows of one head of K (row i at `k + i·rowStride`, `d` floats) as strips of
/// `keyPanelWidth` keys: strip s holds [d][16] with element (c, j) = K[16·s + j][c], keys
/// past the end zero. Floats written: ceil(keys / 16)·16·d.
func packKeyPanels(_ k: UnsafePointer<Float>, rowStride: Int, keys: Int, headDim d: Int,
                   into dst: UnsafeMutablePointer<Float>) {
    var done = 0
    #if arch(x86_64)
    if CPUFeatures.useAVX512Kernels {
        done = AVX512AttentionTiles.packKeyBlocks(k, rowStride: rowStride, keys: keys, headDim: d, into: dst)
        if done == d { return }
    }
    #endif
    let strips = (keys + keyPanelWidth - 1) / keyPanelWidth
    for s in 0..<strips {
        let strip = dst + s * d * keyPanelWidth
        for j in 0..<keyPanelWidth {
            let key = s * keyPanelWidth + j
            if key < keys {
                let src = k + key * rowStride
                for c in done..<d { strip[c * keyPanelWidth + j] = src[c] }
            } else {
                for c in done..<d { strip[c * keyPanelWidth + j] = 0 }
            }
        }
    }
}

/// Whether `fusedAttention` packs V in pairs of keys (`packValuePairs`) for this head dim:
/// 40 on the AVX-512 kernels, whose value tile takes both keys of a pair in one FMA per 16 lanes.
func valuePairsApply(headDim d: Int) -> Bool {
    #if arch(x86_64)
    return d == 40 && CPUFeatures.useAVX512Kernels
    #else
    return false
    #endif
}

/// Floats `packValuePairs` writes for `keys` keys (80 per pair; 0 where it does not apply).
func valuePairFloats(keys: Int, headDim d: Int) -> Int {
    valuePairsApply(headDim: d) ? (keys + 1) / 2 * 80 : 0
}

/// Packs one head of V (row j at `v + j·rowStride`, 40 floats) in pairs of keys, interleaved:
/// pair q is five vectors of 16, vector k holding V[2q][8k + i] at 2i and V[2q + 1][8k + i] at
/// 2i + 1 (0 past the last key), for the AVX-512 head-dim-40 value tile.
func packValuePairs(_ v: UnsafePointer<Float>, rowStride: Int, keys: Int, into dst: UnsafeMutablePointer<Float>) {
    for q in 0..<((keys + 1) / 2) {
        let first = v + 2 * q * rowStride, pair = dst + 80 * q
        if 2 * q + 1 < keys {
            let second = first + rowStride
            for c in 0..<40 { pair[2 * c] = first[c]; pair[2 * c + 1] = second[c] }
        } else {
            for c in 0..<40 { pair[2 * c] = first[c]; pair[2 * c + 1] = 0 }
        }
    }
}

/// o[r][0..<40] += Σ_j p[r][j]·v[j][0..<40] for two rows (p rows at p + r·ldp, o rows at
/// o + r·ldo, v rows at v + j·ldv): ten accumulators, five loads and two broadcasts per
/// ten FMAs.
@inline(__always)
func accumulateValues2x40(_ p: UnsafePointer<Float>, ldp: Int, _ v: UnsafePointer<Float>, ldv: Int, keys: Int,
                          _ o: UnsafeMutablePointer<Float>, ldo: Int) {
    let o1 = o + ldo, p1 = p + ldp
    var a0 = vload(o, 0), a1 = vload(o, 8), a2 = vload(o, 16), a3 = vload(o, 24), a4 = vload(o, 32)
    var b0 = vload(o1, 0), b1 = vload(o1, 8), b2 = vload(o1, 16), b3 = vload(o1, 24), b4 = vload(o1, 32)
    var vp = v
    for j in 0..<keys {
        let s0 = VFloat(repeating: p[j]), s1 = VFloat(repeating: p1[j])
        var x = vload(vp, 0); a0 = a0.addingProduct(s0, x); b0 = b0.addingProduct(s1, x)
        x = vload(vp, 8); a1 = a1.addingProduct(s0, x); b1 = b1.addingProduct(s1, x)
        x = vload(vp, 16); a2 = a2.addingProduct(s0, x); b2 = b2.addingProduct(s1, x)
        x = vload(vp, 24); a3 = a3.addingProduct(s0, x); b3 = b3.addingProduct(s1, x)
        x = vload(vp, 32); a4 = a4.addingProduct(s0, x); b4 = b4.addingProduct(s1, x)
        vp += ldv
    }
    vstore(a0, o, 0); vstore(a1, o, 8); vstore(a2, o, 16); vstore(a3, o, 24); vstore(a4, o, 32)
    vstore(b0, o1, 0); vstore(b1, o1, 8); vstore(b2, o1, 16); vstore(b3, o1, 24); vstore(b4, o1, 32)
}

/// `accumulateValues2x40` for one row.
@inline(__always)
func accumulateValues1x40(_ p: UnsafePointer<Float>, _ v: UnsafePointer<Float>, ldv: Int, keys: Int,
                          _ o: UnsafeMutablePointer<Float>) {
    var a0 = vload(o, 0), a1 = vload(o, 8), a2 = vload(o, 16), a3 = vload(o, 24), a4 = vload(o, 32)
    var vp = v
    for j in 0..<keys {
        let s0 = VFloat(repeating: p[j])
        a0 = a0.addingProduct(s0, vload(vp, 0)); a1 = a1.addingProduct(s0, vload(vp, 8))
        a2 = a2.addingProduct(s0, vload(vp, 16)); a3 = a3.addingProduct(s0, vload(vp, 24))
        a4 = a4.addingProduct(s0, vload(vp, 32))
        vp += ldv
    }
    vstore(a0, o, 0); vstore(a1, o, 8); vstore(a2, o, 16); vstore(a3, o, 24); vstore(a4, o, 32)
}

/// S = Q·Kᵀ for `rows` query rows (scaled Q, contiguous rows of `d` floats) against
/// `stripCount` key strips starting at `panels`, written as rows of `lds` floats. Given
/// `rowMax` and `lanes` (rows × 16 floats of scratch), the AVX-512 build also writes each row's
/// largest score over the strips' first `keys` columns into `rowMax` and returns true; the
/// AVX2 build returns false (the caller then scans the rows).
@discardableResult
func scoreTile(_ q: UnsafePointer<Float>, rows: Int, headDim d: Int, panels: UnsafePointer<Float>,
               stripCount: Int, _ s: UnsafeMutablePointer<Float>, lds: Int, keys: Int,
               rowMax: UnsafeMutablePointer<Float>? = nil, lanes: UnsafeMutablePointer<Float>? = nil) -> Bool {
    #if arch(x86_64)
    if CPUFeatures.useAVX512Kernels {
        AVX512AttentionTiles.scoreTile(q, rows: rows, headDim: d, panels: panels, stripCount: stripCount, s, lds: lds,
                                       rowMax: rowMax, lanes: lanes,
                                       lastStripKeys: keys - (stripCount - 1) * keyPanelWidth)
        return rowMax != nil && lanes != nil
    }
    #endif
    for t in 0..<stripCount {
        let strip = panels + t * d * keyPanelWidth
        let sCol = s + t * keyPanelWidth
        var r = 0
        while r + 6 <= rows {
            multiplyStrip6x16(q + r * d, lda: d, strip, ldb: keyPanelWidth, depth: d, sCol + r * lds, ldc: lds, add: false)
            r += 6
        }
        while r < rows {
            multiplyStrip1x16(q + r * d, strip, ldb: keyPanelWidth, depth: d, sCol + r * lds, add: false)
            r += 1
        }
    }
    return false
}

/// Keys per pass of `accumulateValues`: the V rows one pass reads (128 × 40 floats, 20 KiB)
/// stay in L1 while every row pair of the tile goes over them.
let valueChunkKeys = 128

/// O[r] += Σ_j P[r][j]·V[j] for `rows` rows over `keys` keys, in key chunks of
/// `valueChunkKeys`: head dim 40 two rows at a time (AVX2), or the AVX-512 tiles (40, 64, 80),
/// which at head dim 40 take `pairs`, these keys' `packValuePairs` (the first key even).
func accumulateValues(_ p: UnsafePointer<Float>, ldp: Int, rows: Int, _ v: UnsafePointer<Float>, ldv: Int,
                      keys: Int, pairs: UnsafePointer<Float>?, _ o: UnsafeMutablePointer<Float>, ldo: Int,
                      headDim d: Int) {
    #if arch(x86_64)
    if CPUFeatures.useAVX512Kernels {
        AVX512AttentionTiles.accumulateValues(p, ldp: ldp, rows: rows, v, ldv: ldv, keys: keys, pairs: pairs,
                                              o, ldo: ldo, headDim: d, chunkKeys: valueChunkKeys)
        return
    }
    #endif
    precondition(d == 40, "accumulateValues: the AVX2 tile is for head dim 40, not \(d)")
    for k0 in stride(from: 0, to: keys, by: valueChunkKeys) {
        let kn = min(valueChunkKeys, keys - k0)
        let pk = p + k0, vk = v + k0 * ldv
        var r = 0
        while r + 2 <= rows {
            accumulateValues2x40(pk + r * ldp, ldp: ldp, vk, ldv: ldv, keys: kn, o + r * ldo, ldo: ldo)
            r += 2
        }
        if r < rows { accumulateValues1x40(pk + r * ldp, vk, ldv: ldv, keys: kn, o + r * ldo) }
    }
}
