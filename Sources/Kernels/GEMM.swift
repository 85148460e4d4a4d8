import CBLAS

/// Row-major single-precision GEMM over OpenBLAS `cblas_sgemm`:
/// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C.
///
/// Threading: OpenBLAS is pinned to one thread (see `ThreadPool`); `gemm` runs on the
/// calling thread, and `parallelGemm` splits C into row or column panels and runs one
/// single-threaded sgemm per panel on the pool's workers.
public enum GEMM {
    /// One sgemm on the calling thread. `lda`, `ldb`, `ldc` are row strides in floats of
    /// A, B, C as stored (before transposition).
    @inline(__always)
    public static func gemm(transA: Bool = false, transB: Bool = false,
                            m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Like `gemm`, but C is split into panels (rows of C when m is the larger side,
    /// otherwise columns) computed in parallel on `pool`.
    public static func parallelGemm(transA: Bool = false, transB: Bool = false,
                                    m: Int, n: Int, k: Int,
                                    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                                    b: UnsafePointer<Float>, ldb: Int,
                                    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                                    pool: ThreadPool) {
        let threads = pool.threadCount
        // Small products: one call; parallel overhead would dominate. A product with few
        // rows but a large operand (the time embedding's 1 × 1280 → 1280 layers: 6.5 MB of
        // weights for 3.3 MFLOP) is bound by reading that operand, which two cores do faster.
        if threads == 1 || GEMM.isSmall(m: m, n: n, k: k) {
            gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                 b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        if m >= n {
            // Row panels of C use row panels of op(A).
            let grain = max(16, (m + threads * 2 - 1) / (threads * 2))
            pool.parallelFor(0..<m, grain: grain) { rows, _ in
                let aPanel = transA ? a + rows.lowerBound : a + rows.lowerBound * lda
                gemm(transA: transA, transB: transB, m: rows.count, n: n, k: k, alpha: alpha,
                     a: aPanel, lda: lda, b: b, ldb: ldb, beta: beta,
                     c: c + rows.lowerBound * ldc, ldc: ldc)
            }
        } else {
            // Column panels of C use column panels of op(B).
            let grain = max(16, (n + threads * 2 - 1) / (threads * 2))
            pool.parallelFor(0..<n, grain: grain) { cols, _ in
                let bPanel = transB ? b + cols.lowerBound * ldb : b + cols.lowerBound
                gemm(transA: transA, transB: transB, m: m, n: cols.count, k: k, alpha: alpha,
                     a: a, lda: lda, b: bPanel, ldb: ldb, beta: beta,
                     c: c + cols.lowerBound, ldc: ldc)
            }
        }
    }

    /// Whether a product is too small to be worth splitting: under 2 M multiply-adds and
    /// under 256 Ki floats (1 MiB) of operands and result together.
    static func isSmall(m: Int, n: Int, k: Int) -> Bool {
        Double(m) * Double(n) * Double(k) < 2_000_000 && m * k + k * n + m * n < 1 << 18
    }

    /// `count` independent GEMMs whose operands sit at fixed strides (in floats) from
    /// one another, spread over the pool (one sgemm per item).
    public static func stridedBatchedGemm(transA: Bool = false, transB: Bool = false,
                                          m: Int, n: Int, k: Int,
                                          alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, strideA: Int,
                                          b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                                          beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int,
                                          count: Int, pool: ThreadPool) {
        pool.parallelFor(0..<count) { items, _ in
            for i in items {
                gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                     a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
                     beta: beta, c: c + i * strideC, ldc: ldc)
            }
        }
    }
}

/// Fully connected layer with PyTorch's weight layout: y = x·Wᵀ + b.
/// - Parameters:
///   - input: [..., inFeatures] (any leading dims; rows = count / inFeatures)
///   - weight: [outFeatures, inFeatures]
///   - bias: [outFeatures] or nil
///   - output: [..., outFeatures], same row count as input; must not alias input
public func linear(_ input: Tensor, weight: Tensor, bias: Tensor?, output: Tensor, pool: ThreadPool) {
    linear(input, weight: WeightTensor(weight), bias: bias, output: output, pool: pool)
}

/// Pointer form of `linear`: `input` is rows×inFeatures, `output` rows×outFeatures.
public func linear(_ input: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures: Int,
                   output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
    linear(input, rows: rows, inFeatures: inFeatures, weight: .f32(weight), bias: bias,
           outFeatures: outFeatures, output: output, pool: pool)
}
