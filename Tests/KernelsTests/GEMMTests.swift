import XCTest
@testable import Kernels

/// Naive C = alpha·op(A)·op(B) + beta·C with explicit strides.
func naiveGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int,
               b: [Float], ldb: Int, beta: Float, c: inout [Float], ldc: Int) {
    for i in 0..<m { for j in 0..<n {
        var s: Float = 0
        for p in 0..<k {
            let av = transA ? a[p * lda + i] : a[i * lda + p]
            let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
            s += av * bv
        }
        c[i * ldc + j] = alpha * s + beta * c[i * ldc + j]
    } }
}

final class GEMMTests: XCTestCase {
    func testGemmAllTransposesAndParallelSplits() {
        var rng = TestRNG(seed: 2)
        for pool in testPools {
            for (m, n, k) in [(1, 1, 1), (3, 5, 7), (130, 17, 9), (9, 300, 33), (257, 260, 40), (1, 600, 500)] {
                for transA in [false, true] { for transB in [false, true] {
                    let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 1, ldc = n + 2
                    let a = rng.array((transA ? k : m) * lda), b = rng.array((transB ? n : k) * ldb)
                    var c = rng.array(m * ldc)
                    var want = c
                    naiveGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.7, a: a, lda: lda,
                              b: b, ldb: ldb, beta: 0.3, c: &want, ldc: ldc)
                    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                        GEMM.parallelGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.7,
                                          a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                                          beta: 0.3, c: pc.baseAddress!, ldc: ldc, pool: pool)
                    } } }
                    assertClose(c, want, atol: 1e-4, "gemm \(m)x\(n)x\(k) tA=\(transA) tB=\(transB)")
                } }
            }
        }
    }

    /// Few FLOPs but a large operand (one row through a 1280 × 1280 weight) is split too: it is
    /// bound by reading the operand. (1, 600, 500) above runs that split.
    func testSmallProductsStayWholeButLargeOperandsSplit() {
        XCTAssertTrue(GEMM.isSmall(m: 3, n: 5, k: 7))
        XCTAssertTrue(GEMM.isSmall(m: 64, n: 64, k: 64))
        XCTAssertFalse(GEMM.isSmall(m: 1, n: 1280, k: 1280), "6.5 MB of weights")
        XCTAssertFalse(GEMM.isSmall(m: 1, n: 600, k: 500))
        XCTAssertFalse(GEMM.isSmall(m: 200, n: 200, k: 200), "8 M multiply-adds")
    }

    func testStridedBatchedGemm() {
        var rng = TestRNG(seed: 3)
        let (m, n, k, count) = (5, 6, 7, 4)
        let a = rng.array(count * m * k), b = rng.array(count * k * n)
        var c = [Float](repeating: 0, count: count * m * n)
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
            GEMM.stridedBatchedGemm(m: m, n: n, k: k, a: pa.baseAddress!, lda: k, strideA: m * k,
                                    b: pb.baseAddress!, ldb: n, strideB: k * n,
                                    c: pc.baseAddress!, ldc: n, strideC: m * n, count: count, pool: testPools[1])
        } } }
        for i in 0..<count {
            var want = [Float](repeating: 0, count: m * n)
            naiveGemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: Array(a[(i * m * k)..<((i + 1) * m * k)]), lda: k,
                      b: Array(b[(i * k * n)..<((i + 1) * k * n)]), ldb: n, beta: 0, c: &want, ldc: n)
            assertClose(Array(c[(i * m * n)..<((i + 1) * m * n)]), want, "batch \(i)")
        }
    }

    func testLinearWithAndWithoutBias() {
        var rng = TestRNG(seed: 4)
        for pool in testPools {
            for (rows, inF, outF) in [(1, 3, 5), (2 * 77, 33, 17), (300, 64, 129)] {
                let x = rng.tensor([rows, inF]), w = rng.tensor([outF, inF]), bias = rng.tensor([outF])
                for useBias in [false, true] {
                    let y = Tensor(zeros: [rows, outF])
                    linear(x, weight: w, bias: useBias ? bias : nil, output: y, pool: pool)
                    var want = [Float](repeating: 0, count: rows * outF)
                    let xa = x.toArray(), wa = w.toArray(), ba = bias.toArray()
                    for r in 0..<rows { for o in 0..<outF {
                        var s: Float = useBias ? ba[o] : 0
                        for i in 0..<inF { s += xa[r * inF + i] * wa[o * inF + i] }
                        want[r * outF + o] = s
                    } }
                    assertClose(y.toArray(), want, atol: 1e-4, "linear \(rows)x\(inF)→\(outF) bias=\(useBias)")
                }
            }
        }
    }
}
