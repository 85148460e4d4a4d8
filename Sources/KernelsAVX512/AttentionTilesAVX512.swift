// The AVX-512 builds of fused attention's two register-blocked products (head dims 40, 64 and 80)
// and its softmax row passes (Kernels' AttentionTiles.swift has the AVX2 ones and the contracts). This module is compiled with
// -target-cpu skylake-avx512, so SIMD16<Float> is one zmm register and `addingProduct` one
// 512-bit FMA; nothing here is inlinable, so no AVX-512 instruction leaks into the AVX2 code
// that calls it, and Kernels calls it only when the CPU has AVX-512 (`CPUFeatures`).
//
// Why: on a CPU with two 512-bit FMA units (an Emerald Rapids Xeon, 2026-12-05) the AVX2
// 6×16 score tile ran at 45 GFLOP/s on one core and an 8×32 AVX-512 tile at 139 (a
// standalone microbenchmark, head dim 40, 512 keys); fused attention at 4096 tokens was 27%
// of an SD 1.5 UNet evaluation at 512².

#if arch(x86_64)
private typealias V8 = SIMD8<Float>
@inline(__always) private func load8(_ p: UnsafePointer<Float>) -> V8 {
    UnsafeRawPointer(p).loadUnaligned(as: V8.self)
}
@inline(__always) private func load8(_ p: UnsafeMutablePointer<Float>) -> V8 {
    UnsafeRawPointer(p).loadUnaligned(as: V8.self)
}
@inline(__always) private func store8(_ v: V8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self)
}

/// Fused attention's products for CPUs with AVX-512 (F, CD, BW, DQ, VL).
public enum AVX512AttentionTiles {
    /// Keys per strip of the packed key panels: Kernels' `keyPanelWidth`, one zmm.
    public static let stripWidth = 16

    /// Kernels' `packKeyPanels` for the head dims' whole blocks of 16: strip s's element
    /// (c, j) = K[16s + j][c] for c < `d / 16 · 16`, keys past `keys` zero; returns the dims
    /// done (Kernels packs the rest). Each 16 keys × 16 dims block is loaded as 16 rows and
    /// transposed in registers, so the strips are written whole vectors at a time, not a
    /// float at a time (CLIP's 77 keys × 64 dims per head: most of its attention's packing).
    public static func packKeyBlocks(_ k: UnsafePointer<Float>, rowStride: Int, keys: Int, headDim d: Int,
                                     into dst: UnsafeMutablePointer<Float>) -> Int {
        let dims = d / 16 * 16
        let strips = (keys + 15) / 16
        for strip in 0..<strips {
            let out = dst + strip * d * 16
            let first = strip * 16, valid = min(16, keys - first)
            var c0 = 0
            while c0 < dims {
                var rows = (V16(), V16(), V16(), V16(), V16(), V16(), V16(), V16(),
                            V16(), V16(), V16(), V16(), V16(), V16(), V16(), V16())
                withUnsafeMutableBytes(of: &rows) { raw in
                    guard let base = raw.baseAddress else { return }
                    let r = base.assumingMemoryBound(to: V16.self)
                    for j in 0..<16 { r[j] = j < valid ? load16(k + (first + j) * rowStride + c0) : V16() }
                    transpose16(r)
                    for c in 0..<16 { store16(r[c], out + (c0 + c) * 16) }
                }
                c0 += 16
            }
        }
        return dims
    }

    /// S = Q·Kᵀ for `rows` query rows (contiguous rows of `d` floats at `q`) against
    /// `stripCount` key strips of 16 keys at `panels` (strip t holds element (c, j) =
    /// K[16t + j][c] at t·16·d + 16c + j), written as rows of `lds` floats at `s`.
    /// Two strips at a time in an 8×32 register tile: sixteen accumulators, two loads and
    /// eight broadcasts per sixteen FMAs, in CAVX512 (`diffusiond_score8xstrips`: at SD's head
    /// dims 40, 64 and 80 its depth unrolled whole, since a Swift loop's pointer and counter
    /// arithmetic took ports the FMAs need); an odd last strip by the same tile's one-strip
    /// copy, and rows after groups of eight one by one. Given `rowMax` (and `lanes`, rows × 16
    /// floats of scratch), also each row's largest score over all the strips' columns, taken
    /// from the accumulators as they are stored, so the online softmax need not read the row for
    /// it. Only the first `lastStripKeys` columns of the last strip count there (the others are
    /// zero-padded keys): that strip's maxima are taken from its stored rows under a lane mask.
    public static func scoreTile(_ q: UnsafePointer<Float>, rows: Int, headDim d: Int, panels: UnsafePointer<Float>,
                                 stripCount: Int, _ s: UnsafeMutablePointer<Float>, lds: Int,
                                 rowMax: UnsafeMutablePointer<Float>? = nil, lanes: UnsafeMutablePointer<Float>? = nil,
                                 lastStripKeys: Int = stripWidth) {
        let stripFloats = d * stripWidth
        let lanes = rowMax == nil ? nil : lanes, laneScratch = lanes
        if let lanes { for i in 0..<(rows * stripWidth) { lanes[i] = -.infinity } }
        defer {
            if let rowMax, let lanes {
                for r in 0..<rows { rowMax[r] = largestLane(load16(lanes + r * stripWidth)) }
            }
        }
        var t = 0
        while t < stripCount {
            let pair = t + 2 <= stripCount
            let strip = panels + t * stripFloats, sCol = s + t * stripWidth
            // The group holding a partial last strip: its maxima come from the stored rows below.
            let masked = lanes != nil && lastStripKeys < stripWidth && t + (pair ? 2 : 1) == stripCount
            let lanes = masked ? nil : lanes
            var r = 0
            while r + 8 <= rows {
                let maxLanes = lanes.map { $0 + r * stripWidth }
                diffusiond_score8xstrips(pair ? 2 : 1, d, q + r * d, strip, sCol + r * lds, lds, maxLanes)
                r += 8
            }
            while r < rows {
                score1xStrips(q + r * d, strip, stripStride: stripFloats, strips: pair ? 2 : 1, depth: d, sCol + r * lds,
                              maxLanes: lanes.map { $0 + r * stripWidth })
                r += 1
            }
            if masked, let all = laneScratch {
                let tail = lanesFrom(lastStripKeys)
                for r in 0..<rows {
                    let row = sCol + r * lds, m = all + r * stripWidth
                    if pair { raiseMax(m, load16(row)) }
                    raiseMax(m, load16(row + (pair ? stripWidth : 0)).replacing(with: -.infinity, where: tail))
                }
            }
            t += pair ? 2 : 1
        }
    }

    /// Head dims whose value product this module has a register tile for: 40, and whole
    /// vectors of 16 up to 128 (SD's 64 and 80). At 160 (SD 1.5's 16×16 level at 512²) the
    /// fused path was 8% slower than sgemm in a UNet evaluation (6.3 -> 6.8 ms), so it stays
    /// there, as does the VAE's 512.
    public static func hasValueTile(headDim d: Int) -> Bool { d == 40 || (d % 16 == 0 && d > 0 && d <= 128) }

    /// O[r][0..<d] += Σ_j P[r][j]·V[j][0..<d] for `rows` rows over `keys` keys (P rows at
    /// p + r·ldp, V rows at v + j·ldv, O rows at o + r·ldo), in key chunks of `chunkKeys`
    /// (Kernels' `valueChunkKeys`: the chunk of V stays in L1 across the rows). Head dim 40
    /// reads V as `pairs`, Kernels' `packValuePairs` of these keys (the first key even): four
    /// rows at a time, keys in pairs, five FMAs per pair and row (`values40`), so no FMA lane
    /// idles; whole vectors (64, 80): six rows × up to 64 columns at a time through the
    /// register tile (RegisterTileAVX512.swift), four loads, six broadcasts, 24 FMAs per key,
    /// the rows after them as one smaller tile.
    public static func accumulateValues(_ p: UnsafePointer<Float>, ldp: Int, rows: Int, _ v: UnsafePointer<Float>,
                                        ldv: Int, keys: Int, pairs: UnsafePointer<Float>?,
                                        _ o: UnsafeMutablePointer<Float>, ldo: Int, headDim d: Int, chunkKeys: Int) {
        precondition(hasValueTile(headDim: d), "AVX512AttentionTiles: no value tile for head dim \(d)")
        precondition(d != 40 || pairs != nil, "AVX512AttentionTiles: head dim 40 needs the packed value pairs")
        precondition(chunkKeys % 2 == 0, "AVX512AttentionTiles: key chunks of an even size keep the pairs whole")
        var k0 = 0
        while k0 < keys {
            let kn = min(chunkKeys, keys - k0)
            let pk = p + k0, vk = v + k0 * ldv
            if d == 40, let pairs {
                var r = 0
                while r < rows {
                    let m = min(4, rows - r)
                    values40(m, pk + r * ldp, ldp: ldp, pairs + k0 * 40, keys: kn, o + r * ldo, ldo: ldo)
                    r += m
                }
                k0 += kn
                continue
            }
            var r = 0
            while r < rows {
                let m = rowGroup(left: rows - r)
                // The head's columns 64 at a time (80 = 64 + 16).
                var c0 = 0
                while c0 < d {
                    let vectors = min(4, (d - c0) / 16)
                    if m == 6 && vectors == 4 {
                        multiply6x64(pk + r * ldp, lda: ldp, vk + c0, ldb: ldv, depth: kn, o + r * ldo + c0, ldc: ldo,
                                     add: true)
                    } else {
                        multiplyRows(m, vectors: vectors, pk + r * ldp, lda: ldp, vk + c0, ldb: ldv, depth: kn,
                                     o + r * ldo + c0, ldc: ldo, add: true, nextRows: nil)
                    }
                    c0 += 16 * vectors
                }
                r += m
            }
            k0 += kn
        }
    }
}

/// The largest of v's sixteen lanes, by halving (SIMD16's `max()` runs lane by lane).
@inline(__always)
private func largestLane(_ v: V16) -> Float {
    let h8 = v.lowHalf.replacing(with: v.highHalf, where: v.lowHalf .< v.highHalf)
    let h4 = h8.lowHalf.replacing(with: h8.highHalf, where: h8.lowHalf .< h8.highHalf)
    let h2 = h4.lowHalf.replacing(with: h4.highHalf, where: h4.lowHalf .< h4.highHalf)
    return Swift.max(h2[0], h2[1])
}

/// `m[0..<16] = max(m, v)` lane by lane: a row's running maximum over the strips.
@inline(__always)
private func raiseMax(_ m: UnsafeMutablePointer<Float>, _ v: V16) {
    let old = load16(m)
    store16(old.replacing(with: v, where: old .< v), m)
}

/// One query row against one or two strips (the rows left over after groups of eight).
private func score1xStrips(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, stripStride: Int, strips: Int,
                           depth: Int, _ c: UnsafeMutablePointer<Float>, maxLanes: UnsafeMutablePointer<Float>?) {
    for t in 0..<strips {
        var acc = V16()
        var bp = b + t * stripStride
        for k in 0..<depth {
            acc = acc.addingProduct(V16(repeating: a[k]), load16(bp))
            bp += 16
        }
        store16(acc, c + t * 16)
        if let maxLanes { raiseMax(maxLanes, acc) }
    }
}

/// `values40` for `m` rows (1 to 4): each count its own specialization (`TileRows`).
private func values40(_ m: Int, _ p: UnsafePointer<Float>, ldp: Int, _ pairs: UnsafePointer<Float>, keys: Int,
                      _ o: UnsafeMutablePointer<Float>, ldo: Int) {
    switch m {
    case 4: values40(Rows4.self, p, ldp: ldp, pairs, keys: keys, o, ldo: ldo)
    case 3: values40(Rows3.self, p, ldp: ldp, pairs, keys: keys, o, ldo: ldo)
    case 2: values40(Rows2.self, p, ldp: ldp, pairs, keys: keys, o, ldo: ldo)
    default:
        precondition(m == 1, "values40: \(m) rows")
        values40(Rows1.self, p, ldp: ldp, pairs, keys: keys, o, ldo: ldo)
    }
}

/// P's entries j and j + 1 of one row in every pair of lanes: [P[j], P[j+1], P[j], …] (one
/// 64-bit broadcast load), to meet a pair of keys' packed value rows.
@inline(__always)
private func pairBroadcast(_ p: UnsafePointer<Float>) -> V16 {
    unsafeBitCast(SIMD8<Double>(repeating: UnsafeRawPointer(p).loadUnaligned(as: Double.self)), to: V16.self)
}

/// O[r][0..<40] += Σ_j P[r][j]·V[j][0..<40] for R.count rows (up to four), keys in pairs from
/// `pairs` (Kernels' `packValuePairs`: per pair five vectors, vector k holding V[j][8k + i] in
/// lane 2i and V[j + 1][8k + i] in lane 2i + 1). Per pair and row one 64-bit broadcast of
/// P[j], P[j + 1] (`pairBroadcast`) and five FMAs, so every lane does work (16 + 16 + 8 lanes
/// per key left a sixth idle); a row's accumulator k then holds key j's terms in its even lanes
/// and key j + 1's in its odd ones, added together into O's columns 8k..<8k + 8 at the end. An
/// odd last key meets its pair with its P entry in the even lanes only. Per pair: five loads
/// of the pairs, R broadcasts, 5·R FMAs, 5·R accumulators.
@inline(never)
private func values40<R: TileRows>(_: R.Type, _ p: UnsafePointer<Float>, ldp: Int, _ pairs: UnsafePointer<Float>,
                                   keys: Int, _ o: UnsafeMutablePointer<Float>, ldo: Int) {
    let m = R.count
    let p1 = p + ldp, p2 = p1 + ldp, p3 = p2 + ldp
    var a0 = V16(), a1 = V16(), a2 = V16(), a3 = V16(), a4 = V16()
    var b0 = V16(), b1 = V16(), b2 = V16(), b3 = V16(), b4 = V16()
    var c0 = V16(), c1 = V16(), c2 = V16(), c3 = V16(), c4 = V16()
    var d0 = V16(), d1 = V16(), d2 = V16(), d3 = V16(), d4 = V16()
    var vp = pairs
    var j = 0
    while j + 2 <= keys {
        let x0 = load16(vp), x1 = load16(vp + 16), x2 = load16(vp + 32), x3 = load16(vp + 48), x4 = load16(vp + 64)
        pairStep(pairBroadcast(p + j), x0, x1, x2, x3, x4, &a0, &a1, &a2, &a3, &a4)
        if m > 1 { pairStep(pairBroadcast(p1 + j), x0, x1, x2, x3, x4, &b0, &b1, &b2, &b3, &b4) }
        if m > 2 { pairStep(pairBroadcast(p2 + j), x0, x1, x2, x3, x4, &c0, &c1, &c2, &c3, &c4) }
        if m > 3 { pairStep(pairBroadcast(p3 + j), x0, x1, x2, x3, x4, &d0, &d1, &d2, &d3, &d4) }
        vp += 80
        j += 2
    }
    if j < keys {
        // An odd last key: its own P entry in the even lanes, zero in the odd ones (its pair's
        // second key, zero padding past the head's last key, or a key of the next chunk).
        let x0 = load16(vp), x1 = load16(vp + 16), x2 = load16(vp + 32), x3 = load16(vp + 48), x4 = load16(vp + 64)
        pairStep(evenLanes(p[j]), x0, x1, x2, x3, x4, &a0, &a1, &a2, &a3, &a4)
        if m > 1 { pairStep(evenLanes(p1[j]), x0, x1, x2, x3, x4, &b0, &b1, &b2, &b3, &b4) }
        if m > 2 { pairStep(evenLanes(p2[j]), x0, x1, x2, x3, x4, &c0, &c1, &c2, &c3, &c4) }
        if m > 3 { pairStep(evenLanes(p3[j]), x0, x1, x2, x3, x4, &d0, &d1, &d2, &d3, &d4) }
    }
    addFolded(a0, a1, a2, a3, a4, o)
    if m > 1 { addFolded(b0, b1, b2, b3, b4, o + ldo) }
    if m > 2 { addFolded(c0, c1, c2, c3, c4, o + 2 * ldo) }
    if m > 3 { addFolded(d0, d1, d2, d3, d4, o + 3 * ldo) }
}

/// [s, 0, s, 0, …]: one key's P entry against a pair's first key only.
@inline(__always)
private func evenLanes(_ s: Float) -> V16 {
    let odd = SIMD16<Int32>(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1) .== SIMD16<Int32>(repeating: 1)
    return V16(repeating: s).replacing(with: 0, where: odd)
}

/// One row's share of a key pair in `values40`: c_k += w·x_k for the pair's five vectors.
@inline(__always)
private func pairStep(_ w: V16, _ x0: V16, _ x1: V16, _ x2: V16, _ x3: V16, _ x4: V16,
                      _ c0: inout V16, _ c1: inout V16, _ c2: inout V16, _ c3: inout V16, _ c4: inout V16) {
    c0 = c0.addingProduct(w, x0); c1 = c1.addingProduct(w, x1); c2 = c2.addingProduct(w, x2)
    c3 = c3.addingProduct(w, x3); c4 = c4.addingProduct(w, x4)
}

/// O[8k + i] += c_k[2i] + c_k[2i + 1] for one row of `values40` (both keys of every pair).
@inline(__always)
private func addFolded(_ c0: V16, _ c1: V16, _ c2: V16, _ c3: V16, _ c4: V16, _ o: UnsafeMutablePointer<Float>) {
    store16(load16(o) + V16(lowHalf: c0.evenHalf + c0.oddHalf, highHalf: c1.evenHalf + c1.oddHalf), o)
    store16(load16(o + 16) + V16(lowHalf: c2.evenHalf + c2.oddHalf, highHalf: c3.evenHalf + c3.oddHalf), o + 16)
    store8(load8(o + 32) + (c4.evenHalf + c4.oddHalf), o + 32)
}
#endif

#if arch(x86_64)
import CAVX512

/// Kernels' `vexp` at 16 lanes, the same operations in the same order (2^n applied by
/// VSCALEFPS, exactly the product `vexp` takes), so both give the same bits (KernelsTests'
/// AVX512KernelTests checks it): Cody–Waite range reduction and Cephes `expf`'s degree-6 polynomial, inputs clamped to [−87.3, 88.3]. (A generic version
/// shared by both compiled to scalar code: the attention kernel ran 5× slower.)
@inline(__always)
func exp16(_ x: V16) -> V16 {
    let hi = V16(repeating: 88.3)
    return exp16(atMost88: x.replacing(with: hi, where: hi .< x))
}

/// `exp16` for x ≤ 88.3 (or NaN), as a softmax's x − max always is: the upper clamp, which
/// changes nothing there, is left out. The same bits as `exp16`.
@inline(__always)
func exp16(atMost88 x: V16) -> V16 {
    let lo = V16(repeating: -87.3)
    let xc = x.replacing(with: lo, where: x .< lo)
    let magic = V16(repeating: 12_582_912)
    let nMagic = magic.addingProduct(xc, V16(repeating: 1.442_695_04))
    let n = nMagic - magic
    var r = xc.addingProduct(n, V16(repeating: -0.693_359_375))
    r = r.addingProduct(n, V16(repeating: 2.121_944_4e-4))
    var p = V16(repeating: 1.987_569_15e-4)
    p = V16(repeating: 1.398_199_95e-3).addingProduct(p, r)
    p = V16(repeating: 8.333_451_9e-3).addingProduct(p, r)
    p = V16(repeating: 4.166_579_59e-2).addingProduct(p, r)
    p = V16(repeating: 1.666_666_55e-1).addingProduct(p, r)
    p = V16(repeating: 5.000_000_12e-1).addingProduct(p, r)
    let r2 = r * r
    let y = (r + V16(repeating: 1)).addingProduct(p, r2)
    // y·2^n in one VSCALEFPS: exactly `vexp`'s y·pow2 (a product by a power of two is exact,
    // and with x clamped to [−87.3, 88.3] no result is subnormal or infinite).
    return diffusiond_scalef16(y, n)
}

/// The online softmax's two row passes (Kernels' `onlineSoftmax`) at 16 lanes.
public enum AVX512Softmax {
    /// e^x lane by lane (`exp16`), for tests that hold it to Kernels' `vexp`.
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> { exp16(x) }

    /// max x[i] over i < n (−∞ for n = 0). `padded`: x is readable up to the next multiple
    /// of 16 past n (a score row of fused attention), so a partial last vector is read whole
    /// and its lanes past n are left out by a mask, not one float at a time.
    public static func maximum(_ x: UnsafePointer<Float>, _ n: Int, padded: Bool = false) -> Float {
        var acc = V16(repeating: -.infinity)
        var i = 0
        while i + 16 <= n {
            let v = load16(x + i)
            acc = acc.replacing(with: v, where: acc .< v)
            i += 16
        }
        if padded && i < n {
            let v = load16(x + i).replacing(with: -.infinity, where: lanesFrom(n - i))
            acc = acc.replacing(with: v, where: acc .< v)
            i = n
        }
        var m = acc.max()
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }

    /// x[i] = e^(x[i] − shift) for i < n (`exp16`); returns Σ x[i] after. No x[i] − shift may
    /// exceed 88.3 (a softmax shifts by the row's maximum, so none exceeds 0): the upper clamp
    /// is left out (`exp16(atMost88:)`). `padded`: x is readable and writable up to the next
    /// multiple of 16 past n, and the floats there may be overwritten (with e^(x[i] − shift)): a
    /// partial last vector goes through `exp16` whole and its lanes past n are masked out of the
    /// sum (each x[i < n] gets the same bits either way).
    public static func expShiftedSum(_ x: UnsafeMutablePointer<Float>, _ n: Int, shift: Float,
                                     padded: Bool = false) -> Float {
        let vs = V16(repeating: shift)
        var acc = V16()
        var i = 0
        while i + 16 <= n {
            let e = exp16(atMost88: load16(x + i) - vs)
            store16(e, x + i)
            acc += e
            i += 16
        }
        if padded && i < n {
            let e = exp16(atMost88: load16(x + i) - vs)
            store16(e, x + i)
            acc += e.replacing(with: 0, where: lanesFrom(n - i))
            i = n
        }
        var sum = acc.sum()
        if i < n {
            var tail = V16()
            for j in 0..<(n - i) { tail[j] = x[i + j] }
            let e = exp16(atMost88: tail - vs)
            for j in 0..<(n - i) { x[i + j] = e[j]; sum += e[j] }
        }
        return sum
    }
}

/// Lanes `first` and up of a 16-lane vector (the part of a partial last vector past a row's end).
@inline(__always)
private func lanesFrom(_ first: Int) -> SIMDMask<SIMD16<Int32>> {
    SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .>= SIMD16<Int32>(repeating: Int32(first))
}
#endif
