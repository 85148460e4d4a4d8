// 16 × 16 float transposes in zmm registers: fused attention packs its key panels with them,
// and Kernels' `transpose` (the spatial transformer's NCHW ↔ tokens permutation) moves its
// whole blocks with `AVX512Transpose.block16`.

#if arch(x86_64)
/// Transposes the 16 × 16 floats in `r` (r[i] lane j ↔ r[j] lane i) by four rounds of perfect
/// unshuffles: each round pairs vectors 2i and 2i + 1 as 32 floats and keeps the even ones in
/// vector i and the odd ones in vector i + 8, which rotates the element's 8 index bits (vector,
/// lane) right by one; four rounds swap the halves.
@inline(__always)
func transpose16(_ r: UnsafeMutablePointer<V16>) {
    for _ in 0..<4 {
        var out = (V16(), V16(), V16(), V16(), V16(), V16(), V16(), V16(),
                   V16(), V16(), V16(), V16(), V16(), V16(), V16(), V16())
        withUnsafeMutableBytes(of: &out) { raw in
            guard let base = raw.baseAddress else { return }
            let o = base.assumingMemoryBound(to: V16.self)
            for i in 0..<8 {
                let both = SIMD32(lowHalf: r[2 * i], highHalf: r[2 * i + 1])
                o[i] = both.evenHalf
                o[i + 8] = both.oddHalf
            }
            for i in 0..<16 { r[i] = o[i] }
        }
    }
}

/// Whole-block transposes for CPUs with AVX-512 (F, CD, BW, DQ, VL).
public enum AVX512Transpose {
    /// dst[j][i] = src[i][j] (+ addend[j][i]) for i, j < 16: sixteen rows of `src` (row stride
    /// `lds` floats) loaded as vectors, transposed in registers (`transpose16`) and stored as
    /// sixteen rows of `dst` (row stride `ldd`), each added to the same row of `addend` (row
    /// stride `ldd`, the destination's layout) when given. The same values as a copy (or one
    /// sum per element).
    public static func block16(_ src: UnsafePointer<Float>, lds: Int, adding addend: UnsafePointer<Float>?,
                               into dst: UnsafeMutablePointer<Float>, ldd: Int) {
        var rows = (V16(), V16(), V16(), V16(), V16(), V16(), V16(), V16(),
                    V16(), V16(), V16(), V16(), V16(), V16(), V16(), V16())
        withUnsafeMutableBytes(of: &rows) { raw in
            guard let base = raw.baseAddress else { return }
            let r = base.assumingMemoryBound(to: V16.self)
            for i in 0..<16 { r[i] = load16(src + i * lds) }
            transpose16(r)
            if let addend {
                for j in 0..<16 { store16(r[j] + load16(addend + j * ldd), dst + j * ldd) }
            } else {
                for j in 0..<16 { store16(r[j], dst + j * ldd) }
            }
        }
    }
}
#endif
