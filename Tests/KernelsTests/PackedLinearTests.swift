import TestSupport
import XCTest
@testable import Kernels

/// Linear-layer weights packed at load (`PackedLinear`, `WeightTensor.packedForLinear`):
/// the layout round-trips, the packed product equals an fp64 reference, and every other use
/// of a packed weight (views, LoRA-style reads and writes, GEMMs that are not a linear layer's,
/// the AVX2 path) sees the same elements as the plain weight.
final class PackedLinearTests: XCTestCase {
    func testLayoutRoundTripsAndPlacesEachElement() throws {
        try XCTSkipUnless(CPUFeatures.useAVX512Kernels, "packing runs only where the AVX-512 kernels do")
        var rng = TestRNG(seed: 61)
        for (n, k) in [(64, 1), (64, 5), (128, 77), (192, 300)] {
            let w = rng.tensor([n, k])
            let p = try packedLinearWeight(w)
            XCTAssertTrue(p.isPacked)
            XCTAssertNil(p.float32, "a packed weight must not offer its buffer as a row-major tensor")
            XCTAssertEqual(p.toArray(), w.toArray(), "\(n)x\(k) round trip")
            guard case let .packed(buffer, _, _) = p.storage else { return XCTFail("not packed storage") }
            let raw = buffer.toArray(), plain = w.toArray()
            for (o, i) in [(0, 0), (n - 1, k - 1), (63, k / 2), (n / 2, 0)] {
                XCTAssertEqual(raw[PackedLinear.packedIndex(row: o, col: i, inFeatures: k)], plain[o * k + i], "(\(o), \(i))")
            }
        }
        XCTAssertNil(WeightTensor(rng.tensor([40, 16])).packedForLinear(), "40 outputs are not whole panels")
        XCTAssertNil(WeightTensor(rng.tensor([64, 3, 3, 3])).packedForLinear(), "only [out, in] weights pack")
    }

    func testPackedLinearMatchesReference() throws {
        try XCTSkipUnless(CPUFeatures.useAVX512Kernels, "packing runs only where the AVX-512 kernels do")
        // Rows around the 6-row tile (tails of 1 to 5 rows, 7 and 8 as 4 + 3 and 4 + 4); depths
        // around the 384 block rule.
        for (rows, k, n) in [(1, 40, 64), (2, 50, 64), (3, 33, 128), (5, 300, 128), (6, 385, 64), (7, 17, 192), (8, 20, 64),
                              (16, 1000, 64), (64, 800, 320), (200, 96, 128), (397, 64, 64)] {
            for withBias in [false, true] {
                for pool in testPools {
                    var rng = TestRNG(seed: UInt64(rows * 131 + k * 7 + n))
                    let x = rng.tensor([rows, k]), w = rng.tensor([n, k]), b = rng.tensor([n])
                    let y = Tensor(zeros: [rows, n])
                    linear(x, weight: try packedLinearWeight(w), bias: withBias ? b : nil, output: y, pool: pool)
                    let (want, scale) = linearReference(x.toArray(), w.toArray(), withBias ? b.toArray() : nil, rows: rows, k: k, n: n)
                    assertWithinScale(y.toArray(), want, scale: scale, "\(rows)x\(k)->\(n) bias \(withBias) threads \(pool.threadCount)")
                }
            }
        }
    }

    func testRowBlockPlanCoversTheRowsAndEvensOutTheThreads() {
        // (rows, depth, threads): 7 blocks on 2 threads become 8; 27 and 3 stay; 16 threads
        // with 4 blocks keep them (the panels are split instead).
        for (rows, depth, threads) in [(8192, 320, 2), (8192, 1280, 2), (1024, 1280, 16), (50, 10_000, 3), (13, 64, 2),
                                       (700, 4000, 3), (1, 64, 2)] {
            let (size, count) = PackedLinear.rowBlockPlan(rows: rows, depth: depth, threads: threads)
            let what = "\(rows) rows, depth \(depth), \(threads) threads: \(count) blocks of \(size)"
            XCTAssertEqual(size % 6, 0, what)
            XCTAssertGreaterThanOrEqual(size * count, rows, what)
            XCTAssertLessThan((count - 1) * size, rows, "\(what): a block is empty")
            if count >= 2 * threads && count < 10 * threads { XCTAssertEqual(count % threads, 0, what) }
        }
        XCTAssertEqual(PackedLinear.rowBlockPlan(rows: 8192, depth: 320, threads: 2).count, 8)
        XCTAssertEqual(PackedLinear.rowBlockPlan(rows: 8192, depth: 1280, threads: 2).count, 27)
        XCTAssertEqual(PackedLinear.rowBlockPlan(rows: 1024, depth: 1280, threads: 16).count, 4)
    }

    func testProductOverSeveralRowBlocksMatchesSgemm() throws {
        try XCTSkipUnless(CPUFeatures.useAVX512Kernels, "packing runs only where the AVX-512 kernels do")
        // 700 rows of depth 4000: 96-row blocks, 8 of them, made 9 on the 3-thread pool.
        // Against the unpacked weight's sgemm, with Σ|x||w| (an sgemm of the magnitudes) as scale.
        let rows = 700, k = 4000, n = 128
        var rng = TestRNG(seed: 91)
        let x = rng.tensor([rows, k]), w = rng.tensor([n, k]), b = rng.tensor([n])
        let want = Tensor(zeros: [rows, n]), scale = Tensor(zeros: [rows, n])
        linear(x, weight: WeightTensor(w), bias: b, output: want, pool: testPools[0])
        let ax = Tensor(shape: [rows, k], values: x.toArray().map { abs($0) })
        let aw = Tensor(shape: [n, k], values: w.toArray().map { abs($0) })
        linear(ax, weight: WeightTensor(aw), bias: nil, output: scale, pool: testPools[0])
        let weight = try packedLinearWeight(w)
        for pool in testPools {
            let y = Tensor(zeros: [rows, n])
            linear(x, weight: weight, bias: b, output: y, pool: pool)
            assertWithinScale(y.toArray(), want.toArray().map(Double.init), scale: scale.toArray().map { 2 * Double($0) },
                        "\(rows)x\(k)->\(n) threads \(pool.threadCount)")
        }
    }

    func testQuickGeluFusedIntoTheProductGivesTheSeparatePassBits() throws {
        // `linear(activation: .quickGelu)` on a packed weight applies it as the tiles are stored
        // (after the last depth block); on a plain weight in a pass after. Both must be exactly
        // `linear` then `activate`: 13 rows (6 + 4 + 3), depth 800 (three depth blocks); and 600
        // rows of depth 96, which run on the AMX tiles where the CPU has them.
        for (rows, k) in [(13, 800), (600, 96)] {
            let n = 128
            var rng = TestRNG(seed: 47)
            let x = rng.tensor([rows, k]), w = rng.tensor([n, k]), b = rng.tensor([n])
            var weights = [("plain", WeightTensor(w))]
            if let p = WeightTensor(w).packedForLinear() { weights.append(("packed", p)) }
            for (name, weight) in weights {
                for pool in testPools {
                    let want = Tensor(zeros: [rows, n]), got = Tensor(zeros: [rows, n])
                    linear(x, weight: weight, bias: b, output: want, pool: pool)
                    activate(.quickGelu, want, output: want, pool: pool)
                    linear(x, weight: weight, bias: b, output: got, activation: .quickGelu, pool: pool)
                    assertBitIdentical(got.toArray(), want.toArray(), "\(name), \(rows) rows, \(pool.threadCount) threads")
                }
            }
        }
    }

    func testResidualAccumulationAndStridedRows() throws {
        try XCTSkipUnless(CPUFeatures.useAVX512Kernels, "packing runs only where the AVX-512 kernels do")
        // C += X·Wᵀ with X and C inside wider rows (lda, ldc beyond k, n): beta 1 keeps C.
        let rows = 13, k = 70, n = 128, lda = 90, ldc = 150
        var rng = TestRNG(seed: 67)
        let xWide = rng.tensor([rows, lda]), w = rng.tensor([n, k]), c0 = rng.tensor([rows, ldc])
        let c = Tensor(zeros: [rows, ldc])
        c.copy(from: c0)
        let pw = try packedLinearWeight(w)
        withExtendedLifetime(pw) {
            GEMM.parallelGemm(transB: true, m: rows, n: n, k: k, a: .f32(xWide.data), lda: lda, b: pw.operand, ldb: k,
                              beta: 1, c: c.data, ldc: ldc, pool: testPools[1])
        }
        let xs = xWide.toArray(), start = c0.toArray(), got = c.toArray()
        let x = (0..<rows).flatMap { r in xs[(r * lda)..<(r * lda + k)] }
        let (prod, scale) = linearReference(Array(x), w.toArray(), nil, rows: rows, k: k, n: n)
        var want = [Double](), sc = [Double](), have = [Float]()
        for r in 0..<rows {
            for o in 0..<ldc {
                have.append(got[r * ldc + o])
                let c = Double(start[r * ldc + o])
                if o < n {
                    want.append(c + prod[r * n + o]); sc.append(scale[r * n + o] + abs(c))
                } else {
                    want.append(c); sc.append(0)   // past column n: untouched, exactly
                }
            }
        }
        assertWithinScale(have, want, scale: sc, "C += X·Wᵀ in wider rows")
    }

    func testResidualPlusBiasWithoutAndWithPacking() throws {
        // `linearProduct(accumulate: true)`: output += X·Wᵀ + bias (a transformer's residual).
        // Packed, the bias is added to the accumulators as they are stored; plain, sgemm then a
        // bias pass.
        let rows = 23, k = 130, n = 192
        var rng = TestRNG(seed: 73)
        let x = rng.tensor([rows, k]), w = rng.tensor([n, k]), b = rng.tensor([n]), r0 = rng.tensor([rows, n])
        let (prod, scale) = linearReference(x.toArray(), w.toArray(), b.toArray(), rows: rows, k: k, n: n)
        let start = r0.toArray().map(Double.init)
        let want = (0..<(rows * n)).map { start[$0] + prod[$0] }, sc = (0..<(rows * n)).map { scale[$0] + abs(start[$0]) }
        var weights = [("plain", WeightTensor(w))]
        if let p = WeightTensor(w).packedForLinear() { weights.append(("packed", p)) }
        for (name, weight) in weights {
            for pool in testPools {
                let out = Tensor(zeros: [rows, n])
                out.copy(from: r0)
                withExtendedLifetime(weight) {
                    linearProduct(x.data, rows: rows, inFeatures: k, weight: weight.operand, bias: b.data, outFeatures: n,
                                  output: out.data, accumulate: true, pool: pool)
                }
                assertWithinScale(out.toArray(), want, scale: sc, "\(name) residual + bias, threads \(pool.threadCount)")
            }
        }
        XCTAssertEqual(weights.count, CPUFeatures.useAVX512Kernels ? 2 : 1)
        // No rows: nothing to compute, nothing written (and no division by an empty row count).
        for (_, weight) in weights {
            let untouched = Tensor(shape: [1], values: [7])
            withExtendedLifetime(weight) {
                linearProduct(x.data, rows: 0, inFeatures: k, weight: weight.operand, bias: b.data, outFeatures: n,
                              output: untouched.data, accumulate: false, pool: testPools[1])
            }
            XCTAssertEqual(untouched.toArray(), [7])
        }
    }

    func testViewsWritesAndOtherProductsSeeThePlainElements() throws {
        try XCTSkipUnless(CPUFeatures.useAVX512Kernels, "packing runs only where the AVX-512 kernels do")
        var rng = TestRNG(seed: 71)
        let n = 192, k = 50
        let w = rng.tensor([n, k])
        let p = try packedLinearWeight(w)
        // Rows 40..<104 (a Q/K/V part that does not start on a panel) read and write in place.
        let view = p.view(offset: 40 * k, shape: [64, k])
        XCTAssertEqual(view.toArray(), Array(w.toArray()[(40 * k)..<(104 * k)]))
        let replacement = rng.tensor([64, k])
        view.assign(from: replacement.data)
        var expected = w.toArray()
        expected.replaceSubrange((40 * k)..<(104 * k), with: replacement.toArray())
        XCTAssertEqual(p.toArray(), expected, "assign through a view changes exactly its rows")
        // Copies both ways (LoRA keeps an fp32 original and restores it).
        let original = WeightTensor(zeros: [n, k], format: nil)
        original.copy(from: p)
        XCTAssertEqual(original.toArray(), expected)
        p.copy(from: WeightTensor(w))
        XCTAssertEqual(p.toArray(), w.toArray())
        // The weight as A (W·X, a projection's layout) and as B without the AVX-512 path:
        // unpacked block by block, the plain weight's product within fp32 rounding.
        let m = 9
        let xT = rng.tensor([m, k]), packedOut = Tensor(zeros: [n, m])
        let xCols = Tensor(zeros: [k, m])   // X as [k, m]: column r is row r of xT
        for r in 0..<m { for i in 0..<k { xCols.data[i * m + r] = xT.data[r * k + i] } }
        GEMM.parallelGemm(m: n, n: m, k: k, a: p.operand, lda: k, b: .f32(xCols.data), ldb: m, c: packedOut.data, ldc: m,
                          pool: testPools[1])
        let (want, scale) = linearReference(xT.toArray(), w.toArray(), nil, rows: m, k: k, n: n)   // [m, n]
        let gotT = packedOut.toArray()
        assertWithinScale((0..<(m * n)).map { gotT[($0 % n) * m + $0 / n] }, want, scale: scale, "W as A, unpacked")
        let viaAVX2 = Tensor(zeros: [m, n])
        let saved = CPUFeatures.useAVX512Kernels
        defer { CPUFeatures.useAVX512Kernels = saved }
        CPUFeatures.useAVX512Kernels = false
        linear(xT, weight: p, bias: nil, output: viaAVX2, pool: testPools[1])
        assertWithinScale(viaAVX2.toArray(), want, scale: scale, "without AVX-512 the packed weight is unpacked for sgemm")
    }
}
