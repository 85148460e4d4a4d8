/// GEMM with a weight operand that may be kept in 16 bits (`WeightOperand.half`) or packed
/// (`WeightOperand.packed`: `parallelGemm` runs a linear layer's product on it directly, and
/// any other use unpacks it block by block the way 16-bit weights are widened).
///
/// OpenBLAS has no half-precision sgemm, and widening a whole layer before its sgemm
/// would bring back the fp32 copy the 16-bit weights exist to avoid. So the 16-bit operand
/// is widened in blocks of at most `weightBlockFloats` (1 MiB: it stays in a core's L2 while
/// OpenBLAS packs it) right before the block's sgemm: blocks of `weightBlockK` along the
/// reduction, accumulated into C with beta = 1 after the first, and of as many rows or
/// columns of C as fit. The products are the fp32 products of the widened values (widening
/// is exact); only the order OpenBLAS sums the reduction slices in can differ from one call.
extension GEMM {
    /// Floats of one widened weight block (1 MiB).
    public static let weightBlockFloats = 1 << 18
    /// Longest slice of the reduction (k) in one widened block: OpenBLAS's own k-blocking
    /// for Haswell-class cores is of this order, so slicing here adds few C passes.
    public static let weightBlockK = 512

    /// One GEMM on the calling thread, C = alpha·op(A)·op(B) + beta·C, where A or B (not
    /// both) may be 16-bit or packed. `scratch` (at least `weightBlockFloats` floats) receives the
    /// widened blocks; it may be nil when both operands are float32.
    public static func gemm(transA: Bool = false, transB: Bool = false,
                            m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: WeightOperand, lda: Int,
                            b: WeightOperand, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                            scratch: UnsafeMutablePointer<Float>?) {
        if m == 0 || n == 0 { return }
        switch (a, b) {
        case let (.f32(pa), .f32(pb)):
            gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: pa, lda: lda,
                 b: pb, ldb: ldb, beta: beta, c: c, ldc: ldc)
        case (_, .f32(let pb)):
            guard let scratch else { preconditionFailure("GEMM.gemm: a 16-bit or packed operand needs scratch") }
            // Blocks of rows of C; stored A is [m, k] (row stride lda), or [k, m] when transposed.
            widenedBlocks(outer: m, k: k) { i0, mc, k0, kk in
                let ldw = transA ? mc : kk
                if transA {
                    a.advanced(by: k0 * lda + i0).widen(rows: kk, cols: mc, ld: lda, into: scratch, dstLd: mc)
                } else {
                    a.advanced(by: i0 * lda + k0).widen(rows: mc, cols: kk, ld: lda, into: scratch, dstLd: kk)
                }
                gemm(transA: transA, transB: transB, m: mc, n: n, k: kk, alpha: alpha,
                     a: scratch, lda: ldw, b: transB ? pb + k0 : pb + k0 * ldb, ldb: ldb,
                     beta: k0 == 0 ? beta : 1, c: c + i0 * ldc, ldc: ldc)
            } empty: {
                gemm(transA: transA, transB: transB, m: m, n: n, k: 0, alpha: alpha, a: pb, lda: max(lda, 1),
                     b: pb, ldb: ldb, beta: beta, c: c, ldc: ldc)
            }
        case (.f32(let pa), _):
            guard let scratch else { preconditionFailure("GEMM.gemm: a 16-bit or packed operand needs scratch") }
            // Blocks of columns of C; stored B is [k, n] (row stride ldb), or [n, k] when transposed.
            widenedBlocks(outer: n, k: k) { j0, nc, k0, kk in
                let ldw = transB ? kk : nc
                if transB {
                    b.advanced(by: j0 * ldb + k0).widen(rows: nc, cols: kk, ld: ldb, into: scratch, dstLd: kk)
                } else {
                    b.advanced(by: k0 * ldb + j0).widen(rows: kk, cols: nc, ld: ldb, into: scratch, dstLd: nc)
                }
                gemm(transA: transA, transB: transB, m: m, n: nc, k: kk, alpha: alpha,
                     a: transA ? pa + k0 * lda : pa + k0, lda: lda, b: scratch, ldb: ldw,
                     beta: k0 == 0 ? beta : 1, c: c + j0, ldc: ldc)
            } empty: {
                gemm(transA: transA, transB: transB, m: m, n: n, k: 0, alpha: alpha, a: pa, lda: lda,
                     b: pa, ldb: max(ldb, 1), beta: beta, c: c, ldc: ldc)
            }
        default:
            preconditionFailure("GEMM.gemm: at most one operand may be 16-bit or packed")
        }
    }

    /// Walks the widened blocks of a GEMM whose 16-bit operand spans `outer` rows (or
    /// columns) of C and the reduction `k`: `body(o0, oc, k0, kk)` for each block of `oc`
    /// outer indices from `o0` and `kk` reduction indices from `k0`, the reduction innermost
    /// (so a block's C panel accumulates with beta = 1 after its first slice). `empty` runs
    /// instead when k = 0 (C is only scaled by beta).
    private static func widenedBlocks(outer: Int, k: Int, _ body: (Int, Int, Int, Int) -> Void,
                                      empty: () -> Void) {
        if k == 0 { empty(); return }
        let kc = min(k, weightBlockK)
        let ob = max(1, min(outer, weightBlockFloats / kc))
        var o0 = 0
        while o0 < outer {
            let oc = min(ob, outer - o0)
            var k0 = 0
            while k0 < k {
                let kk = min(kc, k - k0)
                body(o0, oc, k0, kk)
                k0 += kk
            }
            o0 += oc
        }
    }

    /// `parallelGemm` where A or B may be 16-bit: the same row or column panels of C, each
    /// worker widening the blocks its panel needs into its own `weightScratch`.
    public static func parallelGemm(transA: Bool = false, transB: Bool = false,
                                    m: Int, n: Int, k: Int,
                                    alpha: Float = 1, a: WeightOperand, lda: Int,
                                    b: WeightOperand, ldb: Int,
                                    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                                    pool: ThreadPool) {
        if case let .f32(pa) = a, case let .f32(pb) = b {
            parallelGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: pa, lda: lda,
                         b: pb, ldb: ldb, beta: beta, c: c, ldc: ldc, pool: pool)
            return
        }
        // A linear layer's product (X·Wᵀ) on a weight packed whole panels at a time.
        if !transA, transB, alpha == 1, beta == 0 || beta == 1, ldb == k, case let .f32(pa) = a,
           let packed = PackedLinear.panels(of: b, inFeatures: k, outFeatures: n) {
            PackedLinear.multiply(pa, ldx: lda, rows: m, inFeatures: k, packed: packed, outFeatures: n, bias: nil,
                                  output: c, ldy: ldc, accumulate: beta == 1, pool: pool)
            return
        }
        if m == 0 || n == 0 { return }
        let threads = pool.threadCount
        if threads == 1 || GEMM.isSmall(m: m, n: n, k: k) {
            // One call, on the calling thread (worker 0) or inline on the worker that asked.
            pool.parallelFor(0..<1) { _, worker in
                gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                     b: b, ldb: ldb, beta: beta, c: c, ldc: ldc,
                     scratch: pool.weightScratch(worker: worker, count: weightBlockFloats))
            }
            return
        }
        if m >= n {
            let grain = max(16, (m + threads * 2 - 1) / (threads * 2))
            pool.parallelFor(0..<m, grain: grain) { rows, worker in
                let aPanel = a.advanced(by: transA ? rows.lowerBound : rows.lowerBound * lda)
                gemm(transA: transA, transB: transB, m: rows.count, n: n, k: k, alpha: alpha,
                     a: aPanel, lda: lda, b: b, ldb: ldb, beta: beta,
                     c: c + rows.lowerBound * ldc, ldc: ldc,
                     scratch: pool.weightScratch(worker: worker, count: weightBlockFloats))
            }
        } else {
            let grain = max(16, (n + threads * 2 - 1) / (threads * 2))
            pool.parallelFor(0..<n, grain: grain) { cols, worker in
                let bPanel = b.advanced(by: transB ? cols.lowerBound * ldb : cols.lowerBound)
                gemm(transA: transA, transB: transB, m: m, n: cols.count, k: k, alpha: alpha,
                     a: a, lda: lda, b: bPanel, ldb: ldb, beta: beta,
                     c: c + cols.lowerBound, ldc: ldc,
                     scratch: pool.weightScratch(worker: worker, count: weightBlockFloats))
            }
        }
    }
}

/// `linear` with the weight in the precision it is kept in (see `WeightTensor`).
/// - Parameters:
///   - input: [..., inFeatures]
///   - weight: [outFeatures, inFeatures]
///   - bias: [outFeatures] or nil
///   - output: [..., outFeatures]; must not alias input
///   - activation: applied to the output when given: by the packed product as it stores its
///     tiles for `.quickGelu` (CLIP's MLP), else in a pass after; the same bits either way
public func linear(_ input: Tensor, weight: WeightTensor, bias: Tensor?, output: Tensor, activation: Activation? = nil,
                   pool: ThreadPool) {
    precondition(weight.rank == 2, "linear: weight must be [out, in], got \(weight.shape)")
    let outF = weight.shape[0], inF = weight.shape[1]
    precondition(input.count % max(inF, 1) == 0 && input.dim(-1) == inF,
                 "linear: input \(input.shape) does not end in \(inF)")
    let rows = input.count / max(inF, 1)
    precondition(output.count == rows * outF, "linear: output \(output.shape) is not [\(rows), \(outF)]")
    if let bias { precondition(bias.count == outF, "linear: bias \(bias.shape) is not [\(outF)]") }
    linear(input.data, rows: rows, inFeatures: inF, weight: weight.operand, bias: bias?.data,
           outFeatures: outF, output: output.data, activation: activation, pool: pool)
}

/// Pointer form of `linear(_:weight:bias:output:activation:pool:)` with a weight operand.
public func linear(_ input: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                   weight: WeightOperand, bias: UnsafePointer<Float>?, outFeatures: Int,
                   output: UnsafeMutablePointer<Float>, activation: Activation? = nil, pool: ThreadPool) {
    let name = activation.map { "linear+\($0) " } ?? "linear "
    OperatorProfile.measure(name + "\(rows)x\(inFeatures)->\(outFeatures)") {
        linearProduct(input, rows: rows, inFeatures: inFeatures, weight: weight, bias: bias,
                      outFeatures: outFeatures, output: output, accumulate: false, activation: activation, pool: pool)
    }
}

/// output = input·Wᵀ + bias, or output += input·Wᵀ + bias when `accumulate` (a residual in
/// place), unprofiled: input rows × inFeatures, W [outFeatures, inFeatures], output rows ×
/// outFeatures, all row-major and dense. A packed weight (`PackedLinear`) runs the packed
/// product, which adds the bias to its accumulators and writes the output once; any other
/// runs sgemm with the bias written before (or added after, onto a residual). `activation`
/// (not with `accumulate`) is applied to the output: by the packed product as it stores its
/// tiles for `.quickGelu`, else in a pass after; the same bits either way.
public func linearProduct(_ input: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                          weight: WeightOperand, bias: UnsafePointer<Float>?, outFeatures: Int,
                          output: UnsafeMutablePointer<Float>, accumulate: Bool, activation: Activation? = nil,
                          pool: ThreadPool) {
    precondition(!accumulate || activation == nil, "linearProduct: an activation on a residual sum")
    if let packed = PackedLinear.panels(of: weight, inFeatures: inFeatures, outFeatures: outFeatures) {
        let fused = activation == .quickGelu
        PackedLinear.multiply(input, ldx: inFeatures, rows: rows, inFeatures: inFeatures, packed: packed,
                              outFeatures: outFeatures, bias: bias, output: output, ldy: outFeatures,
                              accumulate: accumulate, quickGelu: fused, pool: pool)
        if let activation, !fused {
            activate(activation, UnsafePointer(output), output, count: rows * outFeatures, pool: pool)
        }
        return
    }
    let grain = max(1, 16_384 / max(outFeatures, 1))
    var beta: Float = accumulate ? 1 : 0
    if let bias, !accumulate {
        pool.parallelFor(0..<rows, grain: grain) { r, _ in
            for i in r { (output + i * outFeatures).update(from: bias, count: outFeatures) }
        }
        beta = 1
    }
    GEMM.parallelGemm(transB: true, m: rows, n: outFeatures, k: inFeatures,
                      a: .f32(input), lda: inFeatures, b: weight, ldb: inFeatures,
                      beta: beta, c: output, ldc: outFeatures, pool: pool)
    if let bias, accumulate {
        pool.parallelFor(0..<rows, grain: grain) { r, _ in
            for i in r { vadd(output + i * outFeatures, bias, output + i * outFeatures, outFeatures) }
        }
    }
    if let activation { activate(activation, UnsafePointer(output), output, count: rows * outFeatures, pool: pool) }
}
