import XCTest
@testable import Kernels
#if arch(x86_64)
import KernelsAVX512
#endif

/// Packed linear layers on the AMX tiles (`AMXPackedLinear`, fp32 as six bf16 products):
/// which shapes take them, fp32 accuracy down to a single product, the fp64 reference at
/// every tail of rows and depth, the residual and bias epilogue (quick_gelu's bits:
/// PackedLinearTests), X taken in parts, many panels in uneven chunks against the AVX-512
/// kernel, and the fallback inside a worker. Skipped where the CPU (or Linux) offers no tiles.
final class AMXLinearTests: XCTestCase {
    #if arch(x86_64)
    private func skipWithoutTiles() throws {
        try XCTSkipUnless(CPUFeatures.useAMX, "no AMX tiles here (or DIFFUSION_AMX=0)")
    }

    /// `body`'s output with the tiles switched off, then on (`CPUFeatures.useAMX` restored).
    private func offAndOn(_ body: () -> [Float]) -> (off: [Float], on: [Float]) {
        let saved = CPUFeatures.useAMX
        defer { CPUFeatures.useAMX = saved }
        CPUFeatures.useAMX = false
        let off = body()
        CPUFeatures.useAMX = true
        return (off, body())
    }

    func testTilesTakeManyRowsOfShallowOrWideProducts() {
        XCTAssertFalse(AMXPackedLinear.takes(rows: 511, depth: 320, outputs: 2560), "too few rows to repay the weights' split")
        XCTAssertTrue(AMXPackedLinear.takes(rows: 512, depth: 320, outputs: 64))
        XCTAssertTrue(AMXPackedLinear.takes(rows: 8192, depth: 640, outputs: 64))
        XCTAssertFalse(AMXPackedLinear.takes(rows: 8192, depth: 641, outputs: 1279), "deep, with few outputs")
        XCTAssertTrue(AMXPackedLinear.takes(rows: 8192, depth: 641, outputs: 1280))
        XCTAssertFalse(AMXPackedLinear.takes(rows: 8192, depth: 1280, outputs: 1279), "deep, with few outputs")
        XCTAssertTrue(AMXPackedLinear.takes(rows: 8192, depth: 1280, outputs: 1280))
        XCTAssertFalse(AMXPackedLinear.takes(rows: 8192, depth: 1281, outputs: 10240), "deeper than a panel's split block in L2")
        XCTAssertFalse(AMXPackedLinear.takes(rows: 8192, depth: 0, outputs: 64))
        XCTAssertEqual(AMXPackedLinear.paddedDepth(17), 32)
        XCTAssertEqual(AMXPackedLinear.paddedRows(545), 576)
    }

    func testOneProductIsRoundedAsFP32Would() throws {
        try skipWithoutTiles()
        // Depth 1: y = x·w, one product per output. Full 24-bit mantissas over eight binades, so
        // every bf16 part is used; the six summed products land within 3 ulp of the exact
        // product (dropping any of them would leave ≥ 2⁻¹⁸ of it, 64 ulp).
        let rows = 576, n = 64
        var rng = TestRNG(seed: 5)
        let xs = (0..<rows).map { _ in rng.uniform(1, 2) * Float(1 << Int(rng.next() % 8)) * (rng.next() % 2 == 0 ? 1 : -1) }
        let ws = (0..<n).map { _ in rng.uniform(1, 2) / Float(1 << Int(rng.next() % 8)) }
        let x = Tensor(shape: [rows, 1], values: xs), w = Tensor(shape: [n, 1], values: ws)
        let y = Tensor(zeros: [rows, n])
        XCTAssertTrue(AMXPackedLinear.takes(rows: rows, depth: 1, outputs: n))
        linear(x, weight: try packedLinearWeight(w), bias: nil, output: y, pool: testPools[1])
        let got = y.toArray()
        var worstUlps: Float = 0
        for r in 0..<rows {
            for o in 0..<n {
                let exact = Double(xs[r]) * Double(ws[o])
                let ulps = Float(abs(Double(got[r * n + o]) - exact)) / Float(exact).magnitude.ulp
                worstUlps = max(worstUlps, ulps)
            }
        }
        XCTAssertLessThanOrEqual(worstUlps, 3, "a product on the tiles is \(worstUlps) ulp from exact")
    }

    func testTilesMatchTheFP64ReferenceAtEveryTail() throws {
        try skipWithoutTiles()
        // Rows past whole 32-row tiles (545, 600, 777), depths short of whole 16- and 32-deep
        // steps (17, 40, 333), the deepest taken with few outputs (640); one, three and six panels.
        for (rows, k, n) in [(512, 320, 128), (545, 40, 64), (600, 17, 192), (777, 333, 384), (1000, 640, 128)] {
            for withBias in [false, true] {
                for pool in testPools {
                    var rng = TestRNG(seed: UInt64(rows * 131 + k * 7 + n))
                    let x = rng.tensor([rows, k]), w = rng.tensor([n, k]), b = rng.tensor([n])
                    let y = Tensor(zeros: [rows, n])
                    XCTAssertTrue(AMXPackedLinear.takes(rows: rows, depth: k, outputs: n))
                    linear(x, weight: try packedLinearWeight(w), bias: withBias ? b : nil, output: y, pool: pool)
                    let (want, scale) = linearReference(x.toArray(), w.toArray(), withBias ? b.toArray() : nil, rows: rows, k: k, n: n)
                    assertWithinScale(y.toArray(), want, scale: scale, "\(rows)x\(k)->\(n) bias \(withBias) threads \(pool.threadCount)")
                }
            }
        }
    }

    func testResidualBiasStridedRowsAndXInParts() throws {
        try skipWithoutTiles()
        // Y += X·Wᵀ + bias with X and Y inside wider rows; X split in parts of three row tiles
        // (a budget of 96 rows), so 600 rows take seven parts, the last one short.
        let rows = 600, k = 70, n = 128, ldx = 90, ldy = 150
        var rng = TestRNG(seed: 67)
        let xWide = rng.tensor([rows, ldx]), w = rng.tensor([n, k]), b = rng.tensor([n]), y0 = rng.tensor([rows, ldy])
        let pw = try packedLinearWeight(w)
        guard let panels = PackedLinear.panels(of: pw.operand, inFeatures: k, outFeatures: n) else {
            return XCTFail("a packed weight of whole panels must offer them")
        }
        let budget = AMXPackedLinear.splitBytes(paddedRows: 3 * AMXPackedLinear.rowTile, depth: k)
        let (prod, scale) = linearReference(xWide.toArray(), w.toArray(), b.toArray(), rows: rows, k: k, n: n, ldx: ldx)
        for pool in testPools {
            let y = Tensor(zeros: [rows, ldy])
            y.copy(from: y0)
            withExtendedLifetime(pw) {
                PackedLinear.multiplyOnTiles(xWide.data, ldx: ldx, rows: rows, inFeatures: k, packed: panels, outFeatures: n,
                                             bias: b.data, output: y.data, ldy: ldy, accumulate: true, quickGelu: false,
                                             pool: pool, splitBudget: budget)
            }
            let start = y0.toArray(), got = y.toArray()
            var have = [Float](), want = [Double](), sc = [Double]()
            for r in 0..<rows {
                for o in 0..<n {
                    have.append(got[r * ldy + o])
                    want.append(Double(start[r * ldy + o]) + prod[r * n + o])
                    sc.append(scale[r * n + o] + Double(abs(start[r * ldy + o])))
                }
                for o in n..<ldy where got[r * ldy + o].bitPattern != start[r * ldy + o].bitPattern {
                    return XCTFail("threads \(pool.threadCount): row \(r) column \(o) past the outputs was written")
                }
            }
            assertWithinScale(have, want, scale: sc, "Y += X·Wᵀ + bias in parts, threads \(pool.threadCount)")
        }
    }

    func testManyPanelsInUnevenChunksAgreeWithTheAVX512Kernel() throws {
        try skipWithoutTiles()
        // 40 and 20 panels in chunks of at most 8, the last one short (40 = 5·8, 20 = 3·7 − 1),
        // on 3 and 5 threads; Y += X·Wᵀ with and without a bias. The last shape is deep (1000
        // inputs: 32 k-steps with a short last one), taken for its 1280 outputs.
        let pools = [testPools[1], ThreadPool(threadCount: 5)]
        for (rows, k, n) in [(513, 64, 2560), (4097, 320, 1280), (545, 1000, 1280)] {
            XCTAssertTrue(AMXPackedLinear.takes(rows: rows, depth: k, outputs: n))
            var rng = TestRNG(seed: UInt64(rows + n))
            let x = rng.tensor([rows, k]), w = rng.tensor([n, k]), b = rng.tensor([n]), y0 = rng.tensor([rows, n])
            let weight = try packedLinearWeight(w)
            let ax = Tensor(shape: [rows, k], values: x.toArray().map { abs($0) })
            let aw = Tensor(shape: [n, k], values: w.toArray().map { abs($0) })
            let scale = Tensor(zeros: [rows, n])
            linear(ax, weight: WeightTensor(aw), bias: nil, output: scale, pool: testPools[1])
            let sc = zip(scale.toArray(), y0.toArray()).map { 2 * Double($0) + Double(abs($1)) + 1e-6 }
            for pool in pools {
                for withBias in [false, true] {
                    let outputs = offAndOn {
                        let y = Tensor(zeros: [rows, n])
                        y.copy(from: y0)
                        withExtendedLifetime(weight) {
                            linearProduct(x.data, rows: rows, inFeatures: k, weight: weight.operand,
                                          bias: withBias ? b.data : nil, outFeatures: n, output: y.data,
                                          accumulate: true, pool: pool)
                        }
                        return y.toArray()
                    }
                    let what = "\(rows)x\(k)->\(n) bias \(withBias) threads \(pool.threadCount)"
                    assertWithinScale(outputs.on, outputs.off.map(Double.init), scale: sc, what)
                    // The two paths sum in different orders: equal bits would mean one ran twice.
                    XCTAssertNotEqual(outputs.on, outputs.off, what)
                }
            }
        }
    }

    func testStaleScratchPastTheDepthIsNeverRead() throws {
        try skipWithoutTiles()
        // The split of X lives in the pool's shared scratch; filled with NaN first, a split that
        // left the padding past the depth unwritten would put NaN·0 into every sum.
        let pool = testPools[1]
        for (rows, k, n) in [(545, 40, 64), (545, 1000, 1280)] {
            var rng = TestRNG(seed: UInt64(rows * 3 + k))
            let x = rng.tensor([rows, k]), w = rng.tensor([n, k])
            let weight = try packedLinearWeight(w)
            let bytes = AMXPackedLinear.splitBytes(paddedRows: AMXPackedLinear.paddedRows(rows), depth: k)
            pool.withSharedScratch(count: bytes / 4) { $0.update(repeating: .nan, count: bytes / 4) }
            let y = Tensor(zeros: [rows, n])
            XCTAssertTrue(AMXPackedLinear.takes(rows: rows, depth: k, outputs: n))
            linear(x, weight: weight, bias: nil, output: y, pool: pool)
            let (want, scale) = linearReference(x.toArray(), w.toArray(), nil, rows: rows, k: k, n: n)
            assertWithinScale(y.toArray(), want, scale: scale, "\(rows)x\(k)->\(n) after NaN scratch")
        }
    }

    func testInsideAWorkerTheAVX512KernelRuns() throws {
        try skipWithoutTiles()
        // A worker cannot hold the shared scratch the split needs: the same bits as with the
        // tiles switched off.
        let rows = 600, k = 64, n = 128
        var rng = TestRNG(seed: 3)
        let x = rng.tensor([rows, k]), w = rng.tensor([n, k]), b = rng.tensor([n])
        let weight = try packedLinearWeight(w)
        var calls = 0
        let outputs = offAndOn {
            // Tiles off: called from outside the pool; tiles on: from inside a worker.
            calls += 1
            let y = Tensor(zeros: [rows, n])
            if calls == 1 {
                linear(x, weight: weight, bias: b, output: y, pool: testPools[1])
            } else {
                testPools[1].parallelFor(0..<1) { _, _ in linear(x, weight: weight, bias: b, output: y, pool: testPools[1]) }
            }
            return y.toArray()
        }
        XCTAssertEqual(outputs.on.map(\.bitPattern), outputs.off.map(\.bitPattern))
    }
    #endif
}
