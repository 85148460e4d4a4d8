import TestSupport
import XCTest
@testable import Kernels
import KernelsAVX512

/// The AVX-512 builds of the softmax passes against Kernels' AVX2 ones (the products are
/// checked through `attention` in AttentionTests, on both paths), and the weight-streaming
/// product against a plain triple loop (and through `conv2d` in ConvTests). Skipped on CPUs
/// without AVX-512, where that code never runs.
final class AVX512KernelTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(CPUFeatures.hasAVX512, "this CPU has no AVX-512")
    }

    /// `wide` (16 lanes) against `narrow` (the AVX2 build, 8 lanes) bit for bit on `special`
    /// and a sweep of [from, to) by `step`.
    private func assertSameBits(_ name: String, special: [Float], from: Float, to: Float, step: Float,
                                wide: (SIMD16<Float>) -> SIMD16<Float>, narrow: (VFloat) -> VFloat) {
        var inputs = special
        var x = from
        while x < to { inputs.append(x); x += step }
        while inputs.count % 16 != 0 { inputs.append(0.25) }
        for start in stride(from: 0, to: inputs.count, by: 16) {
            var v16 = SIMD16<Float>()
            for i in 0..<16 { v16[i] = inputs[start + i] }
            let got = wide(v16)
            for i in 0..<16 {
                let want = narrow(VFloat(repeating: inputs[start + i]))[0]
                XCTAssertEqual(got[i].bitPattern, want.bitPattern, "\(name)(\(inputs[start + i])): \(got[i]) vs \(want)")
            }
        }
    }

    func testExpGivesVexpsBits() {
        // The two copies of the polynomial must agree bit for bit, clamped ends included.
        assertSameBits("exp", special: [-100, -87.4, -87.3, -50, -1e-8, 0, 1e-8, 0.5, 1, 10, 88.3, 88.4, 100],
                       from: -90, to: 90, step: 0.0137, wide: AVX512Softmax.exp, narrow: vexp)
    }

    func testGeluGivesGeluVsBits() {
        // GEGLU's gate at 16 lanes must give the AVX2 pass's bits (the two builds share tests).
        assertSameBits("gelu", special: [-100, -20, -9.5, -3, -1, -1e-8, 0, 1e-8, 0.5, 1, 3, 9.5, 20, 100],
                       from: -12, to: 12, step: 0.0071, wide: AVX512GEGLU.gelu, narrow: geluV)
    }

    /// The 16-lane filter transforms (taps gathered by permutes) against the 8-lane ones, bit
    /// for bit, F(2×2) and F(4×4), through `WinogradTile.transformWeights` (which hands the
    /// channels past the last 16 to the 8-lane code): 16, 37 and 64 input channels, a plane
    /// wider than the channels, filters with a different value in every tap.
    func testFilterTransformsGiveTheEightLaneBits() {
        var rng = TestRNG(seed: 77)
        let saved = CPUFeatures.useAVX512Kernels
        defer { CPUFeatures.useAVX512Kernels = saved }
        for kind in [WinogradTile.f2, .f4] {
            for cin in [16, 37, 64] {
                let filters = rng.tensor([cin, 3, 3]).toArray()
                let plane = cin + 5
                func transform(avx512: Bool) -> [Float] {
                    CPUFeatures.useAVX512Kernels = avx512
                    var u = [Float](repeating: .nan, count: kind.positions * plane)
                    filters.withUnsafeBufferPointer { f in
                        u.withUnsafeMutableBufferPointer { kind.transformWeights(f.baseAddress!, cin: cin, into: $0.baseAddress!, plane: plane) }
                    }
                    return u
                }
                let wide = transform(avx512: true), narrow = transform(avx512: false)
                for k in 0..<kind.positions {
                    for c in 0..<cin {
                        let i = k * plane + c
                        XCTAssertFalse(narrow[i].isNaN, "\(kind) cin \(cin): U[\(k)][\(c)] not written")
                        XCTAssertEqual(wide[i].bitPattern, narrow[i].bitPattern,
                                       "\(kind) cin \(cin): U[\(k)][\(c)] \(wide[i]) vs \(narrow[i])")
                    }
                }
            }
        }
    }

    /// Key panels packed by the AVX-512 block transpose (with the dims past the last 16 left to
    /// Kernels) equal the scalar packing float for float: head dims 40 (two blocks and 8 more),
    /// 64 and 80; 1, 16 and 77 keys (a strip with one key, a whole strip, a partial last one);
    /// a row stride wider than the head.
    func testKeyPanelsPackedByBlocksEqualTheScalarPacking() {
        var rng = TestRNG(seed: 91)
        let saved = CPUFeatures.useAVX512Kernels
        defer { CPUFeatures.useAVX512Kernels = saved }
        for d in [40, 64, 80] {
            for keys in [1, 16, 77] {
                let stride = 3 * d + 8
                let k = rng.tensor([keys, stride]).toArray()
                func pack(avx512: Bool) -> [Float] {
                    CPUFeatures.useAVX512Kernels = avx512
                    var out = [Float](repeating: .nan, count: (keys + 15) / 16 * 16 * d)
                    k.withUnsafeBufferPointer { src in
                        out.withUnsafeMutableBufferPointer { dst in
                            guard let s = src.baseAddress, let o = dst.baseAddress else { return }
                            packKeyPanels(s + d, rowStride: stride, keys: keys, headDim: d, into: o)
                        }
                    }
                    return out
                }
                let wide = pack(avx512: true), narrow = pack(avx512: false)
                XCTAssertFalse(narrow.contains { $0.isNaN }, "d \(d) keys \(keys): a float not written")
                XCTAssertEqual(wide, narrow, "d \(d) keys \(keys)")
                // And the layout itself: strip s, element (c, j) = K[16s + j][c].
                XCTAssertEqual(wide[(keys - 1) / 16 * 16 * d + (d - 1) * 16 + (keys - 1) % 16], k[(keys - 1) * stride + d + d - 1])
            }
        }
    }

    func testRowMaxAndShiftedExpSum() {
        var rng = TestRNG(seed: 51)
        for n in [0, 1, 15, 16, 17, 40, 77, 512, 1030] {
            let row = rng.tensor([max(n, 1)], -6, 6).toArray()
            let values = Array(row.prefix(n))
            let m = values.withUnsafeBufferPointer { AVX512Softmax.maximum($0.baseAddress!, n) }
            XCTAssertEqual(m, values.max() ?? -.infinity, "max of \(n)")
            var out = values
            let shift: Float = 1.5
            let sum = out.withUnsafeMutableBufferPointer { AVX512Softmax.expShiftedSum($0.baseAddress!, n, shift: shift) }
            var want = 0.0
            for i in 0..<n {
                let e = vexp(VFloat(repeating: values[i] - shift))[0]
                XCTAssertEqual(out[i].bitPattern, e.bitPattern, "e^(x[\(i)] - shift) of \(n)")
                want += Double(e)
            }
            XCTAssertEqual(Double(sum), want, accuracy: 1e-5 * max(1, want), "sum of \(n)")

            // Padded rows (fused attention's score rows, whole 16-float strips): the partial last
            // vector is read and written whole, so the floats past n hold large scores that
            // must not reach the maximum or the sum.
            let room = (n + 15) / 16 * 16
            var padded = values + [Float](repeating: 50, count: room - n)
            let pm = padded.withUnsafeBufferPointer { AVX512Softmax.maximum($0.baseAddress!, n, padded: true) }
            XCTAssertEqual(pm, m, "padded max of \(n)")
            let psum = padded.withUnsafeMutableBufferPointer {
                AVX512Softmax.expShiftedSum($0.baseAddress!, n, shift: shift, padded: true)
            }
            for i in 0..<n { XCTAssertEqual(padded[i].bitPattern, out[i].bitPattern, "padded e^(x[\(i)] - shift) of \(n)") }
            XCTAssertEqual(Double(psum), want, accuracy: 1e-5 * max(1, want), "padded sum of \(n)")
        }
        // The softmax pass leaves out exp16's upper clamp (x − shift ≤ 0 there): its bits down to
        // and past the lower clamp (−87.3), whole vectors and a masked partial one.
        var low: [Float] = [0, -1e-8, -0.5, -50, -87.2, -87.3, -87.31, -87.4, -90, -100, -1000]
        var x: Float = -95
        while x < 0 { low.append(x); x += 0.173 }
        let n = low.count, room = (n + 15) / 16 * 16
        var padded = low + [Float](repeating: 0, count: room - n)
        _ = padded.withUnsafeMutableBufferPointer { AVX512Softmax.expShiftedSum($0.baseAddress!, n, shift: 0, padded: true) }
        for i in 0..<n {
            let want = vexp(VFloat(repeating: low[i]))[0]
            XCTAssertEqual(padded[i].bitPattern, want.bitPattern, "e^\(low[i]) in the softmax pass")
        }
    }

    func testScoreTileRowMaximaAreTheStoredRowsMaxima() {
        // The fused softmax shifts by these maxima; softmax gives the same answer for any shift,
        // so only an exact check catches one that is too large or misses a column. The scores
        // themselves must be each row's FMA chain over the head dim, bit for bit, on SD's head
        // dims (CAVX512's unrolled eight-row tiles) and on another (its run-time-depth tile).
        var rng = TestRNG(seed: 61)
        let width = AVX512AttentionTiles.stripWidth
        for d in [40, 64, 80, 24] {
        for rows in [1, 5, 8, 9, 17] {
            for strips in [1, 2, 3, 5] {
            // The last strip's keys: whole, or fewer (zero-padded keys whose scores must not count),
            // in a strip of its own (odd counts) or paired with the one before (even counts).
            for lastKeys in [width, 1, 7, 13] {
                let q = rng.tensor([rows * d], -2, 2).toArray(), panels = rng.tensor([strips * width * d], -2, 2).toArray()
                let lds = strips * width + 3
                var s = [Float](repeating: .nan, count: rows * lds)
                var rowMax = [Float](repeating: .nan, count: rows), lanes = [Float](repeating: 0, count: rows * width)
                q.withUnsafeBufferPointer { qp in
                    panels.withUnsafeBufferPointer { pp in
                        s.withUnsafeMutableBufferPointer { sp in
                            rowMax.withUnsafeMutableBufferPointer { mp in
                                lanes.withUnsafeMutableBufferPointer { lp in
                                    guard let q0 = qp.baseAddress, let p0 = pp.baseAddress, let s0 = sp.baseAddress,
                                          let m0 = mp.baseAddress, let l0 = lp.baseAddress else { return }
                                    AVX512AttentionTiles.scoreTile(q0, rows: rows, headDim: d, panels: p0, stripCount: strips,
                                                                   s0, lds: lds, rowMax: m0, lanes: l0,
                                                                   lastStripKeys: lastKeys)
                                }
                            }
                        }
                    }
                }
                for r in 0..<rows {
                    let row = s[(r * lds)..<(r * lds + (strips - 1) * width + lastKeys)]
                    XCTAssertEqual(rowMax[r], row.max(), "d \(d), rows \(rows), strips \(strips), last \(lastKeys): row \(r)")
                    for j in 0..<(strips * width) {
                        var want: Float = 0
                        for k in 0..<d {
                            want = want.addingProduct(q[r * d + k], panels[(j / width) * width * d + k * width + j % width])
                        }
                        XCTAssertEqual(s[r * lds + j].bitPattern, want.bitPattern, "d \(d), rows \(rows), strips \(strips): S[\(r)][\(j)]")
                    }
                }
            }
            }
        }
        }
    }

    func testStreamingProductAgainstTripleLoop() {
        var rng = TestRNG(seed: 52)
        // (rows, cols, depth): row groups of six with and without a tail (tails of 1 to 5 rows,
        // 7 and 8 cut 4 + 3 and 4 + 4), column blocks of 64 with 16-column remainders, one to
        // six depth blocks (64 KiB of X: 1024 deep at 16 columns, 204 at 80), an empty depth,
        // and 25 columns (the last vector's products past column 25 computed and dropped).
        let cases = [(1, 16, 1), (6, 64, 5), (13, 48, 33), (7, 80, 1030), (12, 128, 200), (5, 16, 0), (7, 25, 40),
                     (6, 25, 1030), (2, 25, 17), (3, 64, 20), (8, 64, 40), (14, 32, 9), (4, 144, 21)]
        for (rows, cols, depth) in cases {
            for accumulate in [false, true] {
                let ldw = depth + 3, ldx = cols + 16, ldy = cols + 5
                let w = rng.tensor([max(1, rows * ldw)]).toArray(), x = rng.tensor([max(1, depth * ldx)]).toArray()
                let y0 = rng.tensor([rows * ldy]).toArray()
                var y = y0
                // Not accumulating, Y is not read: NaN where the product goes must be overwritten.
                if !accumulate { for o in 0..<rows { for t in 0..<cols { y[o * ldy + t] = .nan } } }
                w.withUnsafeBufferPointer { pw in
                    x.withUnsafeBufferPointer { px in
                        y.withUnsafeMutableBufferPointer { py in
                            AVX512StreamingGEMM.multiply(rows: rows, cols: cols, depth: depth, w: pw.baseAddress!, ldw: ldw,
                                                         x: px.baseAddress!, ldx: ldx, accumulate: accumulate,
                                                         y: py.baseAddress!, ldy: ldy)
                        }
                    }
                }
                for o in 0..<rows {
                    for t in 0..<ldy {
                        let got = y[o * ldy + t]
                        guard t < cols else {
                            XCTAssertEqual(got.bitPattern, y0[o * ldy + t].bitPattern,
                                           "\(rows)x\(cols)x\(depth) wrote past column \(cols)")
                            continue
                        }
                        var sum = accumulate ? Double(y0[o * ldy + t]) : 0
                        for p in 0..<depth { sum += Double(w[o * ldw + p]) * Double(x[p * ldx + t]) }
                        XCTAssertEqual(Double(got), sum, accuracy: 1e-4 * max(1, abs(sum)),
                                       "\(rows)x\(cols)x\(depth) accumulate \(accumulate) at (\(o), \(t))")
                    }
                }
            }
        }
    }

    func testPackedTilesGiveTheStreamingTilesBits() {
        // The packed product's register tiles (CAVX512's `diffusiond_tile6x64_packed` and its
        // 1–5-row tails, four steps per turn) and the weight-streaming product's (Swift's
        // `multiplyTile`, one step per turn) do the same FMAs in the same order: on
        // C[m][64] = A[m][depth]·B[depth][64] they must agree bit for bit. Depths: below one
        // turn, with one to three steps past the turns, and over several depth blocks of both
        // products (384 and 256 deep).
        var rng = TestRNG(seed: 58)
        for rows in 1...6 {
            for depth in [1, 3, 4, 7, 64, 333, 1001] {
                for accumulate in [false, true] {
                    let lda = depth + 5, ldc = 64 + 3
                    let a = rng.tensor([rows * lda]).toArray(), b = rng.tensor([depth * 64]).toArray()
                    let c0 = rng.tensor([rows * ldc]).toArray()
                    var viaStreaming = c0, viaPacked = c0
                    a.withUnsafeBufferPointer { pa in
                        b.withUnsafeBufferPointer { pb in
                            viaStreaming.withUnsafeMutableBufferPointer { py in
                                AVX512StreamingGEMM.multiply(rows: rows, cols: 64, depth: depth, w: pa.baseAddress!, ldw: lda,
                                                             x: pb.baseAddress!, ldx: 64, accumulate: accumulate,
                                                             y: py.baseAddress!, ldy: ldc)
                            }
                            // B[depth][64] is one packed panel of 64 outputs as it lies.
                            viaPacked.withUnsafeMutableBufferPointer { py in
                                AVX512PackedLinear.multiply(x: pa.baseAddress!, ldx: lda, rows: 0..<rows, depth: depth,
                                                            packed: pb.baseAddress!, panels: 0..<1, bias: nil,
                                                            y: py.baseAddress!, ldy: ldc, accumulate: accumulate)
                            }
                        }
                    }
                    assertBitIdentical(viaPacked, viaStreaming,
                                       "\(rows) rows, depth \(depth), accumulate \(accumulate), against the Swift tile")
                    // With a bias: added in fp32 as the first depth block's tile is stored (equal
                    // blocks of at most `maxDepthBlock`), the later blocks' FMAs on top; nothing
                    // past column 64. The reference does the same scalar FMAs.
                    let blocks = (depth + AVX512PackedLinear.maxDepthBlock - 1) / AVX512PackedLinear.maxDepthBlock
                    let block = (depth + blocks - 1) / blocks
                    let bias = rng.tensor([64]).toArray()
                    var withBias = c0
                    a.withUnsafeBufferPointer { pa in
                        b.withUnsafeBufferPointer { pb in
                            bias.withUnsafeBufferPointer { pbias in
                                withBias.withUnsafeMutableBufferPointer { py in
                                    AVX512PackedLinear.multiply(x: pa.baseAddress!, ldx: lda, rows: 0..<rows, depth: depth,
                                                                packed: pb.baseAddress!, panels: 0..<1, bias: pbias.baseAddress!,
                                                                y: py.baseAddress!, ldy: ldc, accumulate: accumulate)
                                }
                            }
                        }
                    }
                    var want = c0
                    for r in 0..<rows {
                        for j in 0..<64 {
                            var sum: Float = accumulate ? c0[r * ldc + j] : 0
                            for p in 0..<depth {
                                sum = sum.addingProduct(a[r * lda + p], b[p * 64 + j])
                                if p == min(block, depth) - 1 { sum += bias[j] }
                            }
                            want[r * ldc + j] = sum
                        }
                    }
                    assertBitIdentical(withBias, want, "\(rows) rows, depth \(depth), accumulate \(accumulate), bias")
                }
            }
        }
    }
}
