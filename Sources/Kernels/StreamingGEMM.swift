/// C (+)= W·X for convolutions with few output pixels: the 4×4 level of an SD UNet at 256²
/// (16 columns, 32 at batch 2), where a layer's weights (up to 1280 × 11,520 floats, 59 MB)
/// meet only those few columns. There sgemm spends most of each call packing those weights,
/// reading and writing them once more before the product reads them again. Here the weights
/// are read where they lie, once, as six row streams broadcast against 16-column strips of X,
/// so the product costs about what streaming the weights from memory costs.
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
                multiplyStrip6x16(w + r * ldw + k0, lda: ldw, xk + j, ldb: ldx, depth: kn, c + r * ldc + j, ldc: ldc, add: add)
            }
            r += 6
        }
        while r < m {
            for j in stride(from: 0, to: n, by: streamingStripWidth) {
                multiplyStrip1x16(w + r * ldw + k0, xk + j, ldb: ldx, depth: kn, c + r * ldc + j, add: add)
            }
            r += 1
        }
    }
}
