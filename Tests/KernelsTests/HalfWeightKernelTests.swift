import XCTest
@testable import Kernels

/// Kernels with 16-bit weights against the fp32 kernels on the same (widened) values: the
/// products are the same fp32 products, so results are bit-identical when the reduction is
/// one block, and within 1e-6 of the summed magnitudes when it is sliced into blocks.
final class HalfWeightKernelTests: XCTestCase {
    /// Random values already representable in `format` (so the fp32 reference computes
    /// with exactly the values the 16-bit kernel widens), as a 16-bit weight and its fp32 twin.
    private func weights(_ shape: [Int], _ format: HalfFormat, seed: UInt64) -> (WeightTensor, Tensor) {
        var rng = TestRNG(seed: seed)
        let t = rng.tensor(shape)
        let h = WeightTensor(zeros: shape, format: format)
        h.assign(from: t.data)
        let wide = h.widened()
        return (h, wide)
    }

    /// |a − b| ≤ 1e-6 · bound elementwise (bound: Σ|x||w| of each output), or bit equality.
    private func check(_ got: [Float], _ want: [Float], bound: [Float]?, _ what: String) {
        XCTAssertEqual(got.count, want.count, what)
        var bad = 0, firstBad = -1
        for i in 0..<min(got.count, want.count) {
            let ok: Bool
            if let bound { ok = abs(got[i] - want[i]) <= 1e-6 * bound[i] } else { ok = got[i].bitPattern == want[i].bitPattern }
            if !ok { bad += 1; if firstBad < 0 { firstBad = i } }
        }
        XCTAssertEqual(bad, 0, "\(what): \(bad) outputs differ, first at \(firstBad)" +
                       (firstBad >= 0 ? " (\(got[firstBad]) vs \(want[firstBad]))" : ""))
    }

    func testGEMMWithHalfOperandMatchesFP32OnWidenedValues() {
        // k = 1300 spans three reduction blocks; m, n = 700 spans two row / column blocks.
        for format in [HalfFormat.f16, .bf16] {
            for (m, n, k) in [(37, 700, 1300), (700, 29, 1300), (40, 50, 300)] {
                for transA in [false, true] {
                    for transB in [false, true] {
                        for halfA in [false, true] {
                            var rng = TestRNG(seed: UInt64(m * 31 + n * 7 + k))
                            let aShape = transA ? [k, m] : [m, k], bShape = transB ? [n, k] : [k, n]
                            let (aHalf, aWide) = halfA ? weights(aShape, format, seed: 1) : (WeightTensor(rng.tensor(aShape)), rng.tensor(aShape))
                            let (bHalf, bWide) = halfA ? (WeightTensor(rng.tensor(bShape)), rng.tensor(bShape)) : weights(bShape, format, seed: 2)
                            // The fp32 operand is the same tensor on both sides.
                            let aF = halfA ? aWide : (aHalf.float32 ?? aWide)
                            let bF = halfA ? (bHalf.float32 ?? bWide) : bWide
                            let c0 = rng.tensor([m, n])
                            let got = Tensor(zeros: [m, n]), want = Tensor(zeros: [m, n])
                            got.copy(from: c0)
                            want.copy(from: c0)
                            let lda = transA ? m : k, ldb = transB ? k : n
                            GEMM.parallelGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.75,
                                              a: halfA ? aHalf.operand : .f32(aF.data), lda: lda,
                                              b: halfA ? .f32(bF.data) : bHalf.operand, ldb: ldb,
                                              beta: 0.5, c: got.data, ldc: n, pool: testPools[1])
                            GEMM.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.75, a: aF.data, lda: lda,
                                      b: bF.data, ldb: ldb, beta: 0.5, c: want.data, ldc: n)
                            // Σ|alpha·a·b| + |beta·c| per output.
                            let a = aF.toArray(), b = bF.toArray(), c = c0.toArray()
                            var bound = [Float](repeating: 0, count: m * n)
                            for i in 0..<m {
                                for j in 0..<n {
                                    var s: Float = 0
                                    for p in 0..<k {
                                        let av = transA ? a[p * m + i] : a[i * k + p]
                                        let bv = transB ? b[j * k + p] : b[p * n + j]
                                        s += abs(av * bv)
                                    }
                                    bound[i * n + j] = 0.75 * s + 0.5 * abs(c[i * n + j]) + 1e-30
                                }
                            }
                            check(got.toArray(), want.toArray(), bound: k <= GEMM.weightBlockK ? nil : bound,
                                  "\(format) m\(m) n\(n) k\(k) tA\(transA) tB\(transB) halfA\(halfA)")
                        }
                    }
                }
            }
        }
    }

    func testLinearWithHalfWeightsIsTheFP32Linear() {
        for format in [HalfFormat.f16, .bf16] {
            for (rows, inF, outF) in [(3, 40, 24), (200, 320, 640), (9, 1280, 96)] {
                var rng = TestRNG(seed: UInt64(rows + inF))
                let x = rng.tensor([rows, inF]), bias = rng.tensor([outF])
                let (wHalf, wWide) = weights([outF, inF], format, seed: 5)
                for pool in testPools {
                    let got = Tensor(zeros: [rows, outF]), want = Tensor(zeros: [rows, outF])
                    linear(x, weight: wHalf, bias: bias, output: got, pool: pool)
                    linear(x, weight: wWide, bias: bias, output: want, pool: pool)
                    if inF <= GEMM.weightBlockK {
                        check(got.toArray(), want.toArray(), bound: nil, "linear \(format) \(rows)x\(inF)→\(outF)")
                    } else {
                        let xa = x.toArray(), wa = wWide.toArray(), ba = bias.toArray()
                        let bound = (0..<(rows * outF)).map { idx -> Float in
                            let r = idx / outF, o = idx % outF
                            return (0..<inF).reduce(abs(ba[o])) { $0 + abs(xa[r * inF + $1] * wa[o * inF + $1]) }
                        }
                        check(got.toArray(), want.toArray(), bound: bound, "linear \(format) \(rows)x\(inF)→\(outF)")
                    }
                }
            }
        }
    }

    func testConvolutionWithHalfWeightsIsTheFP32Convolution() {
        // (shape, which path): Winograd F(2×2) and F(4×4) (see `winogradTile(for:)`), im2col
        // (stride 2; and 3×3 with kdim = 64·9 > one reduction block), direct 1×1.
        let shapes: [(Conv2DShape, String)] = [
            (Conv2DShape(batch: 2, inChannels: 24, height: 20, width: 28, outChannels: 32, kernelH: 3, kernelW: 3,
                         stride: 1, padding: .symmetric(1)), "winograd"),
            (Conv2DShape(batch: 1, inChannels: 128, height: 33, width: 34, outChannels: 128, kernelH: 3, kernelW: 3,
                         stride: 1, padding: .symmetric(1)), "winograd"),
            (Conv2DShape(batch: 1, inChannels: 16, height: 17, width: 13, outChannels: 20, kernelH: 3, kernelW: 3,
                         stride: 2, padding: .symmetric(1)), "im2col stride 2"),
            (Conv2DShape(batch: 1, inChannels: 64, height: 6, width: 5, outChannels: 40, kernelH: 3, kernelW: 3,
                         stride: 1, padding: .symmetric(1)), "im2col, reduction in blocks"),
            (Conv2DShape(batch: 2, inChannels: 48, height: 9, width: 11, outChannels: 36, kernelH: 1, kernelW: 1,
                         stride: 1, padding: .symmetric(0)), "direct 1x1"),
            // One column tile split by output channels: unfolded once, shared (the fp32 reference
            // then takes streamingGemm, another summation order: compared within the bound).
            (Conv2DShape(batch: 1, inChannels: 16, height: 4, width: 4, outChannels: 130, kernelH: 3, kernelW: 3,
                         stride: 1, padding: .symmetric(1)), "im2col, shared unfold"),
            // kdim 9216: on AVX-512 CPUs the weight-streaming product widens 24 of the 40 rows at a
            // time, each output summed exactly as from the fp32 weights (bit equality there).
            (Conv2DShape(batch: 1, inChannels: 1024, height: 4, width: 4, outChannels: 40, kernelH: 3, kernelW: 3,
                         stride: 1, padding: .symmetric(1)), "im2col, streamed in row blocks"),
            // 32 tiles: on AVX-512 CPUs F(2×2) on panels, each panel's filters widened per depth block.
            (Conv2DShape(batch: 2, inChannels: 160, height: 8, width: 8, outChannels: 40, kernelH: 3, kernelW: 3,
                         stride: 1, padding: .symmetric(1)), "winograd panels"),
            // At most four outputs (conv_out): the direct kernel widens each output's filters once.
            (Conv2DShape(batch: 2, inChannels: 32, height: 7, width: 19, outChannels: 3, kernelH: 3, kernelW: 3,
                         stride: 1, padding: .symmetric(1)), "direct, few outputs"),
        ]
        XCTAssertEqual(winogradTile(for: shapes[0].0), .f2, "the first shape must take the F(2×2) path")
        XCTAssertEqual(winogradTile(for: shapes[1].0), .f4, "the second shape must take the F(4×4) path")
        if CPUFeatures.useAVX512Kernels {
            XCTAssertEqual(winogradTile(for: shapes[7].0), .f2, "the panels' shape must take the F(2×2) path")
        }
        for format in [HalfFormat.f16, .bf16] {
            for (s, path) in shapes {
                var rng = TestRNG(seed: UInt64(s.inChannels * 13 + s.height))
                let x = rng.tensor([s.batch, s.inChannels, s.height, s.width]), bias = rng.tensor([s.outChannels])
                let (wHalf, wWide) = weights([s.outChannels, s.inChannels, s.kernelH, s.kernelW], format, seed: 9)
                for pool in testPools {
                    let outShape = [s.batch, s.outChannels, s.outHeight, s.outWidth]
                    let got = Tensor(zeros: outShape), want = Tensor(zeros: outShape)
                    conv2d(x, weight: wHalf, bias: bias, stride: s.stride, padding: s.padding, output: got, pool: pool)
                    conv2d(x, weight: wWide, bias: bias, stride: s.stride, padding: s.padding, output: want, pool: pool)
                    let kdim = s.inChannels * s.kernelH * s.kernelW
                    let streamed = path.contains("streamed") && CPUFeatures.useAVX512Kernels
                    let panels = path == "winograd panels" && CPUFeatures.useAVX512Kernels
                    if (kdim <= GEMM.weightBlockK && !path.contains("shared")) || path == "winograd" || streamed || panels
                        || path.contains("few outputs") {
                        check(got.toArray(), want.toArray(), bound: nil, "conv \(path) \(format) threads \(pool.threadCount)")
                    } else {
                        // Σ|x||w| over each output's receptive field, bounded by the whole-kernel sum.
                        let maxX = x.toArray().map(abs).max() ?? 0
                        let wa = wWide.toArray(), ba = bias.toArray()
                        let bound = (0..<got.count).map { idx -> Float in
                            let o = (idx / (s.outHeight * s.outWidth)) % s.outChannels
                            return abs(ba[o]) + maxX * wa[(o * kdim)..<((o + 1) * kdim)].reduce(0) { $0 + abs($1) }
                        }
                        check(got.toArray(), want.toArray(), bound: bound, "conv \(path) \(format) threads \(pool.threadCount)")
                    }
                }
            }
        }
    }

    func testMappedStorageBecomesWritableWithoutTouchingTheSource() {
        // A read-only "mapping": bytes owned by the test; makeWritable copies them.
        var bits: [UInt16] = [0x3C00, 0x4000, 0x4200, 0x4400]  // 1, 2, 3, 4
        let owner = NSObject()
        bits.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            let storage = HalfStorage(mapping: base, count: 4, format: .f16, owner: owner)
            XCTAssertFalse(storage.isOwned)
            let w = WeightTensor(half: storage, shape: [2, 2])
            XCTAssertEqual(w.toArray(), [1, 2, 3, 4])
            let fives = [Float](repeating: 5, count: 2)
            fives.withUnsafeBufferPointer { p in if let b = p.baseAddress { w.view(offset: 2, shape: [2]).assign(from: b) } }
            XCTAssertTrue(storage.isOwned)
            XCTAssertEqual(w.toArray(), [1, 2, 5, 5])
        }
        XCTAssertEqual(bits, [0x3C00, 0x4000, 0x4200, 0x4400], "the mapped bytes are never written")
    }
}
