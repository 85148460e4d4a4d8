// The AVX-512 build of the weight-streaming product (Kernels' StreamingGEMM.swift has the AVX2
// one and the contract): Y = W·X for a convolution with few output pixels, W the layer's
// weights read where they lie, as six row streams broadcast against up to 64 columns of X
// (four zmm) at a time.
//
// Why: sgemm packs W on every call, and at the UNet's 8×8 and 4×4 levels a layer's weights
// (up to 59 MB) meet only 16–128 columns, so the packing costs about as much as the product.
// Measured with `diffusion-bench unet --profile` on an Emerald Rapids Xeon (2026-12-05): see
// docs/BENCHMARKS.md.

#if arch(x86_64)
/// Y (+)= W·X with W read in place, for CPUs with AVX-512 (F, CD, BW, DQ, VL).
public enum AVX512StreamingGEMM {
    /// Columns of X one pass of a row group takes (four zmm per weight row).
    public static let columnBlock = 64
    /// Depth of one pass: X's block (depth × padded columns floats) is kept to 64 KiB, between
    /// 128 and 1024 rows deep (so 128 KiB at 256 columns), so it stays in L2 while the weights
    /// stream past. Full 16-column vectors sum each output in the same order whatever the
    /// block; a last partial vector sums each block from zero into `tail` and adds it, so its
    /// bits depend on where the blocks fall.
    static func depthBlock(columns: Int) -> Int {
        min(1024, max(128, (16 << 10) / ((columns + 15) / 16 * 16)))
    }

    /// Y = W·X, or Y += W·X when `accumulate`, on the calling thread, row-major: W is `rows` ×
    /// `depth` (row stride `ldw`), X is `depth` × `cols` (row stride `ldx`; the floats up to the
    /// next multiple of 16 columns must be readable: their products are computed and dropped),
    /// Y is `rows` × `cols` (row stride `ldy`; nothing past column `cols` is written).
    public static func multiply(rows: Int, cols: Int, depth: Int, w: UnsafePointer<Float>, ldw: Int,
                                x: UnsafePointer<Float>, ldx: Int, accumulate: Bool,
                                y: UnsafeMutablePointer<Float>, ldy: Int) {
        if rows <= 0 || cols <= 0 { return }
        if depth <= 0 {
            if !accumulate { for o in 0..<rows { (y + o * ldy).update(repeating: 0, count: cols) } }
            return
        }
        // The last, partial vector of a row (cols not a multiple of 16) goes through `tail`,
        // allocated only then (a Winograd layer calls this once per position and block).
        let tail: UnsafeMutablePointer<Float>? = cols % 16 == 0 ? nil : .allocate(capacity: 6 * 16)
        defer { tail?.deallocate() }
        let depthBlock = depthBlock(columns: cols)
        var p0 = 0
        while p0 < depth {
            let kb = min(depthBlock, depth - p0)
            let add = accumulate || p0 > 0
            var o = 0
            while o < rows {
                let group = rowGroup(left: rows - o)
                let wb = w + o * ldw + p0
                // The weights' next block (the next row group, else the first rows at the next
                // depth), prefetched into L2 during this group's first column block.
                let next: UnsafePointer<Float>? = o + group < rows ? wb + group * ldw : (p0 + kb < depth ? w + p0 + kb : nil)
                var t0 = 0
                while t0 < cols {
                    let tc = min(columnBlock, cols - t0)
                    let full = tc / 16, rest = tc % 16
                    let xb = x + p0 * ldx + t0, yb = y + o * ldy + t0
                    let ahead = t0 == 0 ? next : nil
                    if group == 6 && full == 4 {
                        multiply6x64(wb, lda: ldw, xb, ldb: ldx, depth: kb, yb, ldc: ldy, add: add, nextRows: ahead)
                    } else if full > 0 {
                        // Fewer columns (one tile of 16–48: the 4×4 level), or the rows after the
                        // groups of six as one or two tiles (`rowGroup`).
                        multiplyRows(group, vectors: full, wb, lda: ldw, xb, ldb: ldx, depth: kb, yb, ldc: ldy, add: add,
                                     nextRows: ahead)
                    }
                    if rest > 0 {
                        // rest > 0 only when cols is not a multiple of 16, where `tail` exists.
                        guard let tail else { preconditionFailure("AVX512StreamingGEMM: partial vector without a buffer") }
                        multiplyRows(group, vectors: 1, wb, lda: ldw, xb + 16 * full, ldb: ldx, depth: kb, tail, ldc: 16,
                                     add: false, nextRows: full == 0 ? ahead : nil)
                        for r in 0..<group {
                            let dst = yb + r * ldy + 16 * full, src = tail + 16 * r
                            for j in 0..<rest { dst[j] = add ? dst[j] + src[j] : src[j] }
                        }
                    }
                    t0 += tc
                }
                o += group
            }
            p0 += kb
        }
    }
}
#endif
