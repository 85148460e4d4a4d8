/// C (+)= W·X for convolutions with few output pixels: the 4×4 level of an SD UNet at 256²
/// (16 columns, 32 at batch 2), where a layer's weights (up to 1280 × 11,520 floats, 59 MB)
/// meet only those few columns. There sgemm spends most of each call packing those weights, reading
/// and writing them once more before the product reads them again. Here the weights are read
/// where they lie, once, as six row streams broadcast against 16-column strips of X, so the
/// product costs about what streaming the weights from memory costs.
///
/// Measured with `diffusion-bench unet --profile` (SD 1.5 at 256², batch 1, alternating with
/// sgemm, 2026-12-04): the 4×4 layers (16 columns) 35–40% faster; at 8×8 (64 columns) sgemm
/// was as fast or faster, so the limit is 32 columns (4×4 at batch 2).

/// Columns of X per strip: two vectors.
let streamingStripWidth = 16
/// The widest X `streamingGemm` takes; wider products keep sgemm, whose packing then pays off.
let streamingGEMMMaxColumns = 32
/// Depth of one pass: the 6 × 256 weight block stays in L1 while every strip of X uses it.
let streamingDepthBlock = 256

/// Whether `streamingGemm` takes a product with `n` columns.
func streamingGEMMApplies(columns n: Int) -> Bool {
    n > 0 && n <= streamingGEMMMaxColumns && n % streamingStripWidth == 0
}

/// C[m×n] = W[m×k]·X[k×n] (+ C when `accumulate`), row-major with leading dimensions ldw,
/// ldx, ldc; n must satisfy `streamingGEMMApplies`. Single-threaded (callers split rows).
func streamingGemm(m: Int, n: Int, k: Int, w: UnsafePointer<Float>, ldw: Int, x: UnsafePointer<Float>, ldx: Int,
                   accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int) {
    for k0 in stride(from: 0, to: k, by: streamingDepthBlock) {
        let kn = min(streamingDepthBlock, k - k0)
        let add = accumulate || k0 > 0
        let xk = x + k0 * ldx
        var r = 0
        while r + 6 <= m {
            for j in stride(from: 0, to: n, by: streamingStripWidth) {
                streamStrip6(w + r * ldw + k0, ldw: ldw, xk + j, ldx: ldx, depth: kn, c + r * ldc + j, ldc: ldc, add: add)
            }
            r += 6
        }
        while r < m {
            for j in stride(from: 0, to: n, by: streamingStripWidth) {
                streamStrip1(w + r * ldw + k0, xk + j, ldx: ldx, depth: kn, c + r * ldc + j, add: add)
            }
            r += 1
        }
    }
}

/// C[r][0..<16] (+)= Σ_k W[r][k]·X[k][0..<16] for six rows of W: twelve accumulators, each
/// step two loads of X, six broadcasts of W and twelve FMAs.
@inline(__always)
private func streamStrip6(_ w: UnsafePointer<Float>, ldw: Int, _ x: UnsafePointer<Float>, ldx: Int, depth: Int,
                          _ c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool) {
    let c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc
    var a00 = VFloat(), a01 = VFloat(), a10 = VFloat(), a11 = VFloat(), a20 = VFloat(), a21 = VFloat()
    var a30 = VFloat(), a31 = VFloat(), a40 = VFloat(), a41 = VFloat(), a50 = VFloat(), a51 = VFloat()
    if add {
        a00 = vload(c, 0); a01 = vload(c, 8); a10 = vload(c1, 0); a11 = vload(c1, 8)
        a20 = vload(c2, 0); a21 = vload(c2, 8); a30 = vload(c3, 0); a31 = vload(c3, 8)
        a40 = vload(c4, 0); a41 = vload(c4, 8); a50 = vload(c5, 0); a51 = vload(c5, 8)
    }
    let w1 = w + ldw, w2 = w1 + ldw, w3 = w2 + ldw, w4 = w3 + ldw, w5 = w4 + ldw
    var xp = x
    for kk in 0..<depth {
        let b0 = vload(xp, 0), b1 = vload(xp, 8)
        var s = VFloat(repeating: w[kk]); a00 = a00.addingProduct(s, b0); a01 = a01.addingProduct(s, b1)
        s = VFloat(repeating: w1[kk]); a10 = a10.addingProduct(s, b0); a11 = a11.addingProduct(s, b1)
        s = VFloat(repeating: w2[kk]); a20 = a20.addingProduct(s, b0); a21 = a21.addingProduct(s, b1)
        s = VFloat(repeating: w3[kk]); a30 = a30.addingProduct(s, b0); a31 = a31.addingProduct(s, b1)
        s = VFloat(repeating: w4[kk]); a40 = a40.addingProduct(s, b0); a41 = a41.addingProduct(s, b1)
        s = VFloat(repeating: w5[kk]); a50 = a50.addingProduct(s, b0); a51 = a51.addingProduct(s, b1)
        xp += ldx
    }
    vstore(a00, c, 0); vstore(a01, c, 8); vstore(a10, c1, 0); vstore(a11, c1, 8)
    vstore(a20, c2, 0); vstore(a21, c2, 8); vstore(a30, c3, 0); vstore(a31, c3, 8)
    vstore(a40, c4, 0); vstore(a41, c4, 8); vstore(a50, c5, 0); vstore(a51, c5, 8)
}

/// `streamStrip6` for one row of W (the rows left over after groups of six).
@inline(__always)
private func streamStrip1(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, ldx: Int, depth: Int,
                          _ c: UnsafeMutablePointer<Float>, add: Bool) {
    var a0 = add ? vload(c, 0) : VFloat(), a1 = add ? vload(c, 8) : VFloat()
    var xp = x
    for kk in 0..<depth {
        let s = VFloat(repeating: w[kk])
        a0 = a0.addingProduct(s, vload(xp, 0)); a1 = a1.addingProduct(s, vload(xp, 8))
        xp += ldx
    }
    vstore(a0, c, 0); vstore(a1, c, 8)
}
