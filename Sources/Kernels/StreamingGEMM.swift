import KernelsAVX512

/// C (+)= W·X for convolutions with few output pixels: the 4×4 level of an SD UNet at 256²
/// (16 columns, 32 at batch 2), where a layer's weights (up to 1280 × 11,520 floats, 59 MB)
/// meet only those few columns. There sgemm spends most of each call packing those weights,
/// reading and writing them once more before the product reads them again. Here the weights
/// are read where they lie, once, as six row streams broadcast against 16-column strips of X,
/// so the product costs about what streaming the weights from memory costs.
///
/// Measured with `diffusion-bench unet --profile` (SD 1.5 at 256², batch 1, alternating with
/// sgemm, 2026-12-04): the 4×4 layers (16 columns) 35–40% faster; at 8×8 (64 columns) sgemm
/// was as fast or faster, so the limit is 32 columns (4×4 at batch 2). On AVX-512 CPUs the
/// wider AVX-512 kernel (`AVX512StreamingGEMM`: six rows × 64 columns a pass) takes up to 128
/// columns instead, where it beat sgemm at 8×8 too (docs/BENCHMARKS.md, 2026-12-05).

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

// MARK: AVX-512

/// Most columns (output pixels) a convolution's product streams its weights for on AVX-512
/// CPUs (`AVX512StreamingGEMM`): the 8×8 level of an SD UNet at 256² and 512² (64 columns at
/// batch 1, 128 at batch 2) and everything smaller. Wider products keep sgemm.
let avx512StreamingMaxColumns = 128

/// Whether a convolution's product W[m×k]·X[k×n] streams its weights through the AVX-512
/// kernel: the kernels are on and there are at most `avx512StreamingMaxColumns` columns.
@inline(__always)
func avx512StreamingApplies(columns n: Int) -> Bool {
    #if arch(x86_64)
    return CPUFeatures.useAVX512Kernels && n > 0 && n <= avx512StreamingMaxColumns
    #else
    return false
    #endif
}

/// Row stride for an unfolded (im2col) tile of `columns` columns: padded to a multiple of 16
/// when `avx512StreamingGemm` will take it, so the kernel reads it in place.
func unfoldedRowStride(columns n: Int) -> Int {
    avx512StreamingApplies(columns: n) ? (n + 15) / 16 * 16 : n
}

/// Whether `avx512StreamingGemm` can take weights `w` with `depth` columns: fp32 always; 16-bit
/// weights when `scratch` (`GEMM.weightBlockFloats` floats) holds six widened rows.
@inline(__always)
func avx512StreamingTakes(_ w: WeightOperand, depth k: Int, scratch: UnsafeMutablePointer<Float>?) -> Bool {
    if case .f32 = w { return true }
    return scratch != nil && 6 * k <= GEMM.weightBlockFloats
}

/// C[m×n] = W[m×k]·X[k×n] (+ C when `accumulate`) through `AVX512StreamingGEMM`, for
/// `avx512StreamingApplies` and `avx512StreamingTakes`. X's rows are read in place when n is a
/// multiple of 16 or `xPadded` says each row is readable up to one (im2col tiles laid out with
/// `unfoldedRowStride`); otherwise (a 1×1 layer's input read where it lies) they are copied,
/// zero-padded, into a temporary buffer (k·⌈n/16⌉·16 floats). 16-bit weights are widened into
/// `scratch` in blocks of whole groups of six rows, so every output is summed exactly as from
/// the fp32 weights.
func avx512StreamingGemm(m: Int, n: Int, k: Int, w: WeightOperand, x: UnsafePointer<Float>, ldx: Int, xPadded: Bool,
                         accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int, scratch: UnsafeMutablePointer<Float>?) {
    #if arch(x86_64)
    let padded = (n + 15) / 16 * 16
    var xs = x, ldxs = ldx
    var copy: UnsafeMutablePointer<Float>? = nil
    defer { copy?.deallocate() }
    if padded != n && !xPadded {
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, k * padded))
        for p in 0..<k {
            (buffer + p * padded).update(from: x + p * ldx, count: n)
            (buffer + p * padded + n).update(repeating: 0, count: padded - n)
        }
        copy = buffer
        xs = UnsafePointer(buffer)
        ldxs = padded
    }
    switch w {
    case .f32(let pw):
        AVX512StreamingGEMM.multiply(rows: m, cols: n, depth: k, w: pw, ldw: k, x: xs, ldx: ldxs,
                                     accumulate: accumulate, y: c, ldy: ldc)
    case .half, .packed:
        guard let scratch else { preconditionFailure("avx512StreamingGemm: 16-bit or packed weights need scratch") }
        let block = max(6, GEMM.weightBlockFloats / max(k, 1) / 6 * 6)
        for r0 in stride(from: 0, to: m, by: block) {
            let rows = min(block, m - r0)
            w.advanced(by: r0 * k).widen(rows: rows, cols: k, ld: k, into: scratch, dstLd: k)
            AVX512StreamingGEMM.multiply(rows: rows, cols: n, depth: k, w: scratch, ldw: k, x: xs, ldx: ldxs,
                                         accumulate: accumulate, y: c + r0 * ldc, ldy: ldc)
        }
    }
    #endif
}
