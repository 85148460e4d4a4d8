// Causal self-attention over a short sequence (CLIP's 77 tokens, head dim 64) for CPUs with
// AVX-512, one head at a time, with the scores transposed: Sᵀ[key][query], queries in the
// lanes. Each query's softmax then runs down a column, lane by lane (maximum, exponentials and
// sum are vector operations over the keys, no reductions across lanes), and P·V is a register
// tile over Pᵀ as it lies.
//
// Why: the general fused path (Kernels' Attention.swift, FlashAttention's online softmax over
// query rows) spent 70% of its time at these sizes outside its products: per query row a
// maximum, an exponential pass and a sum folded across lanes, each a call for one to five
// vectors (text encoder, one core: 16.5 µs a head, the products 5 µs of it).

#if arch(x86_64)
import CAVX512

/// Causal self-attention of one head over at most `maxTokens` tokens (AVX-512).
public enum AVX512ShortCausalAttention {
    /// Longest sequence it takes: every score of a head in L1 and L2 at once (SD's text
    /// encoders have 77 tokens).
    public static let maxTokens = 128

    /// Whether it takes `tokens` tokens of head dim `d` (whole vectors of 16, up to 128).
    public static func takes(tokens n: Int, headDim d: Int) -> Bool {
        n > 0 && n <= maxTokens && d > 0 && d % 16 == 0 && d <= 128
    }

    /// Scratch floats `head` needs.
    public static func scratchFloats(tokens n: Int, headDim d: Int) -> Int {
        let rows = (n + 7) / 8 * 8, strips = (n + 15) / 16
        return rows * d + strips * 16 * d + rows * 32 + d * 32
    }

    /// O = softmax(scale·Q·Kᵀ + causal mask)·V for one head: token t's query, key and value at
    /// q + t·ldq, k + t·ldk, v + t·ldv (`d` floats each), its output at o + t·ldo. The same
    /// operations per score, exponential and output term as Kernels' fused attention (Q scaled
    /// first, FMAs over the head dim in order, e^(s − max) by `exp16`, each output the sum of
    /// its P·V terms in key order times 1/Σ); only each query's Σ P is added in another order.
    public static func head(q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int,
                            v: UnsafePointer<Float>, ldv: Int, o: UnsafeMutablePointer<Float>, ldo: Int,
                            tokens n: Int, headDim d: Int, scale: Float, scratch: UnsafeMutablePointer<Float>) {
        precondition(takes(tokens: n, headDim: d), "AVX512ShortCausalAttention: \(n) tokens, head dim \(d)")
        let rows = (n + 7) / 8 * 8, strips = (n + 15) / 16
        let kc = scratch, qt = kc + rows * d, st = qt + strips * 16 * d, ot = st + rows * 32
        // K's rows one after another (the score tile's broadcast rows), zero rows to a whole 8.
        for t in 0..<n { (kc + t * d).update(from: k + t * ldk, count: d) }
        (kc + n * d).update(repeating: 0, count: (rows - n) * d)
        // Qᵀ in 16-query strips (element (c, j) = scale·Q[16s + j][c]), queries past n zero.
        _ = AVX512AttentionTiles.packKeyBlocks(q, rowStride: ldq, keys: n, headDim: d, into: qt)
        let vScale = V16(repeating: scale)
        for i in 0..<(strips * d) { store16(load16(qt + 16 * i) * vScale, qt + 16 * i) }
        var s = 0
        while s < strips {
            // Strips in pairs from the last one: with an odd count strip 0, which sees the fewest
            // keys, is the one on its own (a one-strip tile runs at half the FMA rate).
            let two = (strips - s) % 2 == 0, q0 = 16 * s
            // Keys up to the pair's last query; the first strip's later keys are masked out.
            let keys = min(n, q0 + (two ? 32 : 16))
            // Sᵀ rows of 32 (or 16) queries, eight keys at a time.
            var k0 = 0
            while k0 < keys {
                diffusiond_score8xstrips(two ? 2 : 1, d, kc + k0 * d, qt + q0 * d, st + k0 * 32, 32, nil)
                k0 += 8
            }
            let sum0 = softmaxColumns(st, keys: keys, firstQuery: q0, queries: min(16, n - q0))
            let sum1 = two ? softmaxColumns(st + 16, keys: keys, firstQuery: q0 + 16, queries: min(16, n - q0 - 16)) : V16()
            // Oᵀ[c][query] for the strip pair, eight head columns at a time.
            var c0 = 0
            while c0 < d {
                if two {
                    diffusiond_value8x32(keys, v + c0, ldv, st, 32, ot + c0 * 32, 32)
                } else {
                    diffusiond_value8x16(keys, v + c0, ldv, st, 32, ot + c0 * 32, 32)
                }
                c0 += 8
            }
            storeRows(ot, sum: sum0, headDim: d, o + q0 * ldo, ldo: ldo, queries: min(16, n - q0))
            if two { storeRows(ot + 16, sum: sum1, headDim: d, o + (q0 + 16) * ldo, ldo: ldo, queries: min(16, n - q0 - 16)) }
            s += two ? 2 : 1
        }
    }

    /// The softmax of 16 queries' score columns in place (key k's scores at st + 32k, lane j
    /// query q0 + j): each lane's maximum over the keys it sees (k ≤ q0 + j, and j < `queries`),
    /// then e^(s − max) there and 0 elsewhere; returns each lane's Σ over the keys.
    @inline(__always)
    private static func softmaxColumns(_ st: UnsafeMutablePointer<Float>, keys: Int, firstQuery q0: Int,
                                       queries: Int) -> V16 {
        let lane = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        let real = lane .< SIMD16<Int32>(repeating: Int32(queries))
        @inline(__always) func seen(_ k: Int) -> SIMDMask<SIMD16<Int32>> {
            real .& (lane .>= SIMD16<Int32>(repeating: Int32(k - q0)))
        }
        var m = V16(repeating: -.infinity)
        for k in 0..<keys {
            let x = load16(st + 32 * k).replacing(with: -.infinity, where: .!seen(k))
            m = m.replacing(with: x, where: m .< x)
        }
        // Lanes past the last query see no key: any finite shift keeps their NaN-free zeros.
        m = m.replacing(with: 0, where: .!real)
        var sum = V16()
        for k in 0..<keys {
            let e = exp16(atMost88: load16(st + 32 * k) - m).replacing(with: 0, where: .!seen(k))
            store16(e, st + 32 * k)
            sum += e
        }
        return sum
    }

    /// Output rows of 16 queries from Oᵀ (head column c's 16 queries at ot + 32c): each lane
    /// times 1/Σ, 16 × 16 blocks transposed, rows past `queries` not written.
    @inline(__always)
    private static func storeRows(_ ot: UnsafePointer<Float>, sum: V16, headDim d: Int,
                                  _ o: UnsafeMutablePointer<Float>, ldo: Int, queries: Int) {
        let inverse = V16(repeating: 1) / sum
        var block = (V16(), V16(), V16(), V16(), V16(), V16(), V16(), V16(),
                     V16(), V16(), V16(), V16(), V16(), V16(), V16(), V16())
        withUnsafeMutableBytes(of: &block) { raw in
            guard let base = raw.baseAddress else { return }
            let r = base.assumingMemoryBound(to: V16.self)
            var c0 = 0
            while c0 < d {
                for i in 0..<16 { r[i] = load16(ot + 32 * (c0 + i)) * inverse }
                transpose16(r)
                for j in 0..<queries { store16(r[j], o + j * ldo + c0) }
                c0 += 16
            }
        }
    }
}
#endif
