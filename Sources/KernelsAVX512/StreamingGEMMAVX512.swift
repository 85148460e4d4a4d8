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
private typealias V16 = SIMD16<Float>

@inline(__always) private func load16(_ p: UnsafePointer<Float>) -> V16 {
    UnsafeRawPointer(p).loadUnaligned(as: V16.self)
}
@inline(__always) private func store16(_ v: V16, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V16.self)
}

/// Y[o][t] = alpha·Σ_p W[o][p]·X[p][t] + beta·Y[o][t] with W read in place, for CPUs with
/// AVX-512 (F, CD, BW, DQ, VL).
public enum AVX512StreamingGEMM {
    /// Columns of X one pass of a row group takes (four zmm per weight row).
    public static let columnBlock = 64
    /// Depth of one pass: X's block (at most 1024 × 64 floats, 256 KiB) stays in L2 while
    /// every group of six weight rows streams past it.
    static let depthBlock = 1024

    /// Y = alpha·W·X + beta·Y on the calling thread, row-major: W is `rows` × `depth` (row
    /// stride `ldw`), X is `depth` × `cols` (row stride `ldx`; the floats up to the next
    /// multiple of 16 columns must be readable: their products are computed and dropped), Y is
    /// `rows` × `cols` (row stride `ldy`). With beta = 0, Y is not read.
    public static func multiply(rows: Int, cols: Int, depth: Int, w: UnsafePointer<Float>, ldw: Int,
                                x: UnsafePointer<Float>, ldx: Int, alpha: Float, beta: Float,
                                y: UnsafeMutablePointer<Float>, ldy: Int) {
        if rows <= 0 || cols <= 0 { return }
        let acc = UnsafeMutablePointer<Float>.allocate(capacity: 6 * columnBlock)
        defer { acc.deallocate() }
        if depth <= 0 {
            for o in 0..<rows {
                for t in 0..<cols {
                    let p = y + o * ldy + t
                    p.pointee = beta == 0 ? 0 : beta * p.pointee
                }
            }
            return
        }
        var p0 = 0
        while p0 < depth {
            let kb = min(depthBlock, depth - p0)
            // After the first depth block Y already holds beta·Y plus the earlier blocks.
            let betaHere: Float = p0 == 0 ? beta : 1
            // Six weight rows (at most 24 KiB of this depth block) stay in L1 while every
            // column block of X (in L2) passes them.
            var o = 0
            while o < rows {
                let group = min(6, rows - o)
                let wb = w + o * ldw + p0
                var t0 = 0
                while t0 < cols {
                    let tc = min(columnBlock, cols - t0)
                    let vectors = (tc + 15) / 16
                    let xb = x + p0 * ldx + t0
                    if group == 6 {
                        if vectors == 4 {
                            tile6x64(wb, ldw: ldw, xb, ldx: ldx, depth: kb, acc)
                        } else {
                            for v in 0..<vectors { tile6x16(wb, ldw: ldw, xb + 16 * v, ldx: ldx, depth: kb, acc + 16 * v) }
                        }
                    } else {
                        for r in 0..<group {
                            for v in 0..<vectors { tile1x16(wb + r * ldw, xb + 16 * v, ldx: ldx, depth: kb, acc + r * columnBlock + 16 * v) }
                        }
                    }
                    flush(acc, rows: group, cols: tc, alpha: alpha, beta: betaHere, y + o * ldy + t0, ldy: ldy)
                    t0 += tc
                }
                o += group
            }
            p0 += kb
        }
    }
}

/// Y[r][t] = alpha·acc[r][t] + beta·Y[r][t] (Y not read when beta is 0) for a group's
/// accumulators (rows of `AVX512StreamingGEMM.columnBlock` floats).
@inline(__always)
private func flush(_ acc: UnsafeMutablePointer<Float>, rows: Int, cols: Int, alpha: Float, beta: Float,
                   _ y: UnsafeMutablePointer<Float>, ldy: Int) {
    let width = AVX512StreamingGEMM.columnBlock
    let va = V16(repeating: alpha), vb = V16(repeating: beta)
    for r in 0..<rows {
        let src = acc + r * width, dst = y + r * ldy
        var t = 0
        while t + 16 <= cols {
            let v = load16(src + t) * va
            store16(beta == 0 ? v : v.addingProduct(vb, load16(dst + t)), dst + t)
            t += 16
        }
        while t < cols { dst[t] = beta == 0 ? alpha * src[t] : alpha * src[t] + beta * dst[t]; t += 1 }
    }
}

/// acc[r][0..<64] = Σ_p W[r][p]·X[p][0..<64] for six weight rows: 24 accumulators; per p
/// four loads of X, six broadcasts, 24 FMAs.
@inline(never)
private func tile6x64(_ w: UnsafePointer<Float>, ldw: Int, _ x: UnsafePointer<Float>, ldx: Int, depth: Int,
                      _ acc: UnsafeMutablePointer<Float>) {
    var c00 = V16(), c01 = V16(), c02 = V16(), c03 = V16(), c10 = V16(), c11 = V16(), c12 = V16(), c13 = V16()
    var c20 = V16(), c21 = V16(), c22 = V16(), c23 = V16(), c30 = V16(), c31 = V16(), c32 = V16(), c33 = V16()
    var c40 = V16(), c41 = V16(), c42 = V16(), c43 = V16(), c50 = V16(), c51 = V16(), c52 = V16(), c53 = V16()
    let w1 = w + ldw, w2 = w1 + ldw, w3 = w2 + ldw, w4 = w3 + ldw, w5 = w4 + ldw
    var xp = x
    for p in 0..<depth {
        let x0 = load16(xp), x1 = load16(xp + 16), x2 = load16(xp + 32), x3 = load16(xp + 48)
        var s = V16(repeating: w[p])
        c00 = c00.addingProduct(s, x0); c01 = c01.addingProduct(s, x1); c02 = c02.addingProduct(s, x2); c03 = c03.addingProduct(s, x3)
        s = V16(repeating: w1[p])
        c10 = c10.addingProduct(s, x0); c11 = c11.addingProduct(s, x1); c12 = c12.addingProduct(s, x2); c13 = c13.addingProduct(s, x3)
        s = V16(repeating: w2[p])
        c20 = c20.addingProduct(s, x0); c21 = c21.addingProduct(s, x1); c22 = c22.addingProduct(s, x2); c23 = c23.addingProduct(s, x3)
        s = V16(repeating: w3[p])
        c30 = c30.addingProduct(s, x0); c31 = c31.addingProduct(s, x1); c32 = c32.addingProduct(s, x2); c33 = c33.addingProduct(s, x3)
        s = V16(repeating: w4[p])
        c40 = c40.addingProduct(s, x0); c41 = c41.addingProduct(s, x1); c42 = c42.addingProduct(s, x2); c43 = c43.addingProduct(s, x3)
        s = V16(repeating: w5[p])
        c50 = c50.addingProduct(s, x0); c51 = c51.addingProduct(s, x1); c52 = c52.addingProduct(s, x2); c53 = c53.addingProduct(s, x3)
        xp += ldx
    }
    store16(c00, acc); store16(c01, acc + 16); store16(c02, acc + 32); store16(c03, acc + 48)
    store16(c10, acc + 64); store16(c11, acc + 80); store16(c12, acc + 96); store16(c13, acc + 112)
    store16(c20, acc + 128); store16(c21, acc + 144); store16(c22, acc + 160); store16(c23, acc + 176)
    store16(c30, acc + 192); store16(c31, acc + 208); store16(c32, acc + 224); store16(c33, acc + 240)
    store16(c40, acc + 256); store16(c41, acc + 272); store16(c42, acc + 288); store16(c43, acc + 304)
    store16(c50, acc + 320); store16(c51, acc + 336); store16(c52, acc + 352); store16(c53, acc + 368)
}

/// acc[r][0..<16] (row stride 64) = Σ_p W[r][p]·X[p][0..<16] for six weight rows.
@inline(never)
private func tile6x16(_ w: UnsafePointer<Float>, ldw: Int, _ x: UnsafePointer<Float>, ldx: Int, depth: Int,
                      _ acc: UnsafeMutablePointer<Float>) {
    var c0 = V16(), c1 = V16(), c2 = V16(), c3 = V16(), c4 = V16(), c5 = V16()
    let w1 = w + ldw, w2 = w1 + ldw, w3 = w2 + ldw, w4 = w3 + ldw, w5 = w4 + ldw
    var xp = x
    for p in 0..<depth {
        let x0 = load16(xp)
        c0 = c0.addingProduct(V16(repeating: w[p]), x0); c1 = c1.addingProduct(V16(repeating: w1[p]), x0)
        c2 = c2.addingProduct(V16(repeating: w2[p]), x0); c3 = c3.addingProduct(V16(repeating: w3[p]), x0)
        c4 = c4.addingProduct(V16(repeating: w4[p]), x0); c5 = c5.addingProduct(V16(repeating: w5[p]), x0)
        xp += ldx
    }
    store16(c0, acc); store16(c1, acc + 64); store16(c2, acc + 128)
    store16(c3, acc + 192); store16(c4, acc + 256); store16(c5, acc + 320)
}

/// acc[0..<16] = Σ_p W[p]·X[p][0..<16] for one weight row (the rows after groups of six).
private func tile1x16(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, ldx: Int, depth: Int,
                      _ acc: UnsafeMutablePointer<Float>) {
    var c0 = V16(), c1 = V16()
    var xp = x
    var p = 0
    while p + 2 <= depth {
        c0 = c0.addingProduct(V16(repeating: w[p]), load16(xp))
        c1 = c1.addingProduct(V16(repeating: w[p + 1]), load16(xp + ldx))
        xp += 2 * ldx
        p += 2
    }
    if p < depth { c0 = c0.addingProduct(V16(repeating: w[p]), load16(xp)) }
    store16(c0 + c1, acc)
}
#endif
