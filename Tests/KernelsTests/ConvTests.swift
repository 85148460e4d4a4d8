import XCTest
@testable import Kernels

/// Direct-loop reference convolution.
func naiveConv(_ x: [Float], _ w: [Float], _ bias: [Float]?, _ s: Conv2DShape) -> [Float] {
    let ho = s.outHeight, wo = s.outWidth
    var out = [Float](repeating: 0, count: s.batch * s.outChannels * ho * wo)
    for n in 0..<s.batch { for o in 0..<s.outChannels { for oy in 0..<ho { for ox in 0..<wo {
        var acc: Float = bias?[o] ?? 0
        for c in 0..<s.inChannels { for ky in 0..<s.kernelH { for kx in 0..<s.kernelW {
            let iy = oy * s.stride - s.padding.top + ky, ix = ox * s.stride - s.padding.left + kx
            if iy < 0 || iy >= s.height || ix < 0 || ix >= s.width { continue }
            acc += x[((n * s.inChannels + c) * s.height + iy) * s.width + ix]
                * w[((o * s.inChannels + c) * s.kernelH + ky) * s.kernelW + kx]
        } } }
        out[((n * s.outChannels + o) * ho + oy) * wo + ox] = acc
    } } } }
    return out
}

final class ConvTests: XCTestCase {
    func testConvAgainstNaive() {
        var rng = TestRNG(seed: 5)
        struct Case { var n, c, h, w, o, k, stride: Int; var pad: Conv2DPadding }
        let cases = [
            Case(n: 1, c: 3, h: 5, w: 7, o: 4, k: 3, stride: 1, pad: .symmetric(1)),
            Case(n: 2, c: 5, h: 9, w: 11, o: 6, k: 3, stride: 1, pad: .symmetric(1)),
            Case(n: 2, c: 4, h: 9, w: 10, o: 3, k: 3, stride: 2, pad: .symmetric(1)),
            Case(n: 1, c: 3, h: 8, w: 8, o: 5, k: 3, stride: 2, pad: Conv2DPadding(top: 0, left: 0, bottom: 1, right: 1)),
            Case(n: 3, c: 7, h: 6, w: 5, o: 9, k: 1, stride: 1, pad: .symmetric(0)),
            Case(n: 2, c: 7, h: 7, w: 5, o: 3, k: 1, stride: 2, pad: .symmetric(0)),
            Case(n: 1, c: 2, h: 4, w: 4, o: 2, k: 3, stride: 1, pad: .symmetric(0)),
            Case(n: 1, c: 2, h: 3, w: 3, o: 2, k: 3, stride: 1, pad: .symmetric(2)),
            Case(n: 2, c: 16, h: 40, w: 37, o: 12, k: 3, stride: 1, pad: .symmetric(1)),   // many tiles, row-crossing tiles
            Case(n: 2, c: 3, h: 40, w: 37, o: 5, k: 1, stride: 1, pad: .symmetric(0)),     // 1×1 direct, several tiles per image
            Case(n: 3, c: 8, h: 5, w: 5, o: 130, k: 3, stride: 1, pad: .symmetric(1)),     // split by output channels, tile spans images
            Case(n: 2, c: 4, h: 6, w: 6, o: 131, k: 1, stride: 1, pad: .symmetric(0)),     // 1×1 direct split by output channels
            // Winograd F(2×2, 3×3): odd output sides (clipped edge tiles), no padding, asymmetric padding.
            Case(n: 2, c: 17, h: 45, w: 46, o: 19, k: 3, stride: 1, pad: .symmetric(1)),
            Case(n: 1, c: 16, h: 50, w: 63, o: 16, k: 3, stride: 1, pad: .symmetric(0)),
            Case(n: 1, c: 16, h: 48, w: 48, o: 24, k: 3, stride: 1, pad: Conv2DPadding(top: 0, left: 0, bottom: 1, right: 1)),
            Case(n: 1, c: 21, h: 24, w: 24, o: 70, k: 3, stride: 1, pad: .symmetric(1)),   // few tiles: split by output channels
            // F(2×2) with 64 tiles (16×16) and 256 (32×32; F(4×4) needs 128 channels): on AVX-512
            // the position GEMMs stream, in blocks of whole six-row groups with a tail, over one
            // and four column blocks of 64.
            Case(n: 1, c: 21, h: 16, w: 16, o: 70, k: 3, stride: 1, pad: .symmetric(1)),
            Case(n: 1, c: 19, h: 32, w: 32, o: 40, k: 3, stride: 1, pad: .symmetric(1)),
            // 128 tiles (16×16 at batch 2; one 16×32 image): two column blocks.
            Case(n: 2, c: 21, h: 16, w: 16, o: 70, k: 3, stride: 1, pad: .symmetric(1)),
            Case(n: 1, c: 18, h: 16, w: 32, o: 33, k: 3, stride: 1, pad: .symmetric(1)),
            // Few output pixels (streamingGemm): 16 columns, depth 360 over two depth blocks, 131 rows
            // (a tail after groups of six); 32 columns spanning two images; a 1×1 layer read in place.
            Case(n: 1, c: 40, h: 4, w: 4, o: 131, k: 3, stride: 1, pad: .symmetric(1)),
            Case(n: 2, c: 40, h: 4, w: 4, o: 130, k: 3, stride: 1, pad: .symmetric(1)),
            Case(n: 1, c: 300, h: 4, w: 4, o: 70, k: 1, stride: 1, pad: .symmetric(0)),
            // AVX-512 weight streaming (at most 128 columns): 64 and 128 columns (an 8×8 level at
            // batch 1 and 2), depth 1152 over two depth blocks; 25 columns (copied, padded to 32).
            Case(n: 1, c: 128, h: 8, w: 8, o: 19, k: 3, stride: 1, pad: .symmetric(1)),
            Case(n: 2, c: 20, h: 8, w: 8, o: 37, k: 3, stride: 1, pad: .symmetric(1)),
            Case(n: 1, c: 24, h: 5, w: 5, o: 13, k: 3, stride: 1, pad: .symmetric(1)),
            // At most four outputs (conv_out: 320 -> 4, 128 -> 3) directly: rows in bands of four
            // (9 and 6 leave partial bands), 16-pixel segments (21 and 37 leave partial ones).
            Case(n: 2, c: 20, h: 9, w: 21, o: 3, k: 3, stride: 1, pad: .symmetric(1)),
            Case(n: 1, c: 16, h: 6, w: 37, o: 4, k: 3, stride: 1, pad: .symmetric(1)),
            Case(n: 1, c: 33, h: 8, w: 16, o: 1, k: 3, stride: 1, pad: .symmetric(1)),
            Case(n: 3, c: 17, h: 1, w: 3, o: 2, k: 3, stride: 1, pad: .symmetric(1)),
        ]
        // Every case on each kernel build this CPU runs: AVX2, and AVX-512 where it has it.
        let saved = CPUFeatures.useAVX512Kernels
        defer { CPUFeatures.useAVX512Kernels = saved }
        for avx512 in CPUFeatures.hasAVX512 ? [false, true] : [false] {
        CPUFeatures.useAVX512Kernels = avx512
        for pool in testPools {
            for cs in cases {
                let s = Conv2DShape(batch: cs.n, inChannels: cs.c, height: cs.h, width: cs.w, outChannels: cs.o,
                                    kernelH: cs.k, kernelW: cs.k, stride: cs.stride, padding: cs.pad)
                let x = rng.tensor([cs.n, cs.c, cs.h, cs.w]), w = rng.tensor([cs.o, cs.c, cs.k, cs.k]), b = rng.tensor([cs.o])
                for useBias in [false, true] {
                    let y = Tensor(zeros: [cs.n, cs.o, s.outHeight, s.outWidth])
                    y.fill(.nan)   // every output element must be written
                    conv2d(x, weight: w, bias: useBias ? b : nil, stride: cs.stride, padding: cs.pad, output: y, pool: pool)
                    let want = naiveConv(x.toArray(), w.toArray(), useBias ? b.toArray() : nil, s)
                    assertClose(y.toArray(), want, atol: 1e-4,
                                "conv \(s) bias=\(useBias) threads=\(pool.threadCount) avx512=\(avx512)")
                }
            }
        }
        }
    }

    /// Two outside threads on one pool, each repeating its own convolution: the kernels whose
    /// data lives in the pool's shared scratch across parallelFor calls (Winograd with few
    /// tiles (24×24, 64×64), Winograd's shared filters (66×66: more than 16·1024 tile
    /// positions), a low-resolution im2col unfolded once (4×4)) must give each thread its own
    /// call's result. The shapes differ in size, so one thread's growth
    /// of the buffer would also free the other's.
    func testTwoOutsideThreadsShareAPool() {
        var rng = TestRNG(seed: 33)
        let pool = ThreadPool(threadCount: 2)
        let shapes = [Conv2DShape(batch: 1, inChannels: 21, height: 24, width: 24, outChannels: 70, kernelH: 3, kernelW: 3,
                                  stride: 1, padding: .symmetric(1)),
                      Conv2DShape(batch: 1, inChannels: 40, height: 4, width: 4, outChannels: 131, kernelH: 3, kernelW: 3,
                                  stride: 1, padding: .symmetric(1)),
                      Conv2DShape(batch: 1, inChannels: 16, height: 64, width: 64, outChannels: 16, kernelH: 3, kernelW: 3,
                                  stride: 1, padding: .symmetric(1)),
                      Conv2DShape(batch: 1, inChannels: 16, height: 66, width: 66, outChannels: 24, kernelH: 3, kernelW: 3,
                                  stride: 1, padding: .symmetric(1))]
        let operands = shapes.map { s in
            (rng.tensor([s.batch, s.inChannels, s.height, s.width]), rng.tensor([s.outChannels, s.inChannels, 3, 3]))
        }
        func run(_ i: Int) -> Tensor {
            let s = shapes[i]
            let y = Tensor(zeros: [s.batch, s.outChannels, s.outHeight, s.outWidth])
            conv2d(operands[i].0, weight: operands[i].1, bias: nil, stride: 1, padding: s.padding, output: y, pool: pool)
            return y
        }
        let wanted = shapes.indices.map { run($0).toArray() }
        let mismatches = UnsafeMutablePointer<Int>.allocate(capacity: shapes.count)
        mismatches.initialize(repeating: 0, count: shapes.count)
        defer { mismatches.deallocate() }
        DispatchQueue.concurrentPerform(iterations: shapes.count) { i in
            for _ in 0..<60 where run(i).toArray() != wanted[i] { mismatches[i] += 1 }
        }
        XCTAssertEqual((0..<shapes.count).map { mismatches[$0] }, [0, 0, 0, 0], "runs that differed from the same call alone")
    }

    /// The many-tile Winograd path (past 256 tiles on AVX-512, past 16·1024 tile positions
    /// everywhere), whole and in parts of its outputs (U over the shared budget: 3 parts of 7,
    /// 7 and 6 channels), by F(2×2) and by F(4×4) (forced: 16 channels), against the naive
    /// convolution; with a last chunk of tiles that is not a multiple of 16 (1089 and 529 tiles).
    func testWinogradManyTilesWholeAndInParts() {
        var rng = TestRNG(seed: 41)
        let saved = CPUFeatures.useAVX512Kernels
        defer { CPUFeatures.useAVX512Kernels = saved }
        for avx512 in CPUFeatures.hasAVX512 ? [false, true] : [false] {
            CPUFeatures.useAVX512Kernels = avx512
            for (kind, side) in [(WinogradTile.f2, 66), (WinogradTile.f4, 90)] {
                let s = Conv2DShape(batch: 1, inChannels: 16, height: side, width: side, outChannels: 20, kernelH: 3,
                                    kernelW: 3, stride: 1, padding: .symmetric(1))
                XCTAssertGreaterThan(kind.positions * kind.tiles(s), 16 * 1024, "\(kind) must take the many-tile path")
                let x = rng.tensor([1, 16, side, side]), w = rng.tensor([20, 16, 3, 3]), b = rng.tensor([20])
                let want = naiveConv(x.toArray(), w.toArray(), b.toArray(), s)
                for pool in testPools {
                    for budget in [winogradSharedBudget, kind.positions * 16 * 7] {
                        let y = Tensor(zeros: [1, 20, side, side])
                        y.fill(.nan)
                        conv2dWinograd(x.data, weight: .f32(w.data), bias: b.data, shape: s, tile: kind, output: y.data,
                                       pool: pool, sharedBudget: budget)
                        assertClose(y.toArray(), want, atol: 1e-4,
                                    "\(kind) budget=\(budget) threads=\(pool.threadCount) avx512=\(avx512)")
                    }
                }
            }
        }
    }

    /// The few-tile path's panels (AVX-512, 32 to 64 tiles: filters transformed six channels
    /// and one depth block at a time) give the bits of the path that transforms a block's
    /// whole U first, and match the naive convolution: F(2×2) at 32 and 48 tiles (SD's 8×8
    /// level at batch 2 and 3) and 64, F(4×4) at 64; output channels not a multiple of six,
    /// input channels over several depth blocks (160 at 64 tiles: 128 + 32; F(4×4) in blocks
    /// of 48).
    func testWinogradPanelsGiveTheWholeFilterPathsBits() throws {
        try XCTSkipUnless(CPUFeatures.hasAVX512, "this CPU has no AVX-512")
        var rng = TestRNG(seed: 53)
        let saved = CPUFeatures.useAVX512Kernels
        defer { CPUFeatures.useAVX512Kernels = saved }
        CPUFeatures.useAVX512Kernels = true
        let cases: [(WinogradTile, Int, Int, Int, Int, Int)] = [  // kind, batch, side, in, out, tiles
            (.f2, 2, 8, 160, 50, 32), (.f2, 3, 8, 128, 37, 48), (.f2, 1, 16, 160, 41, 64), (.f4, 1, 32, 128, 19, 64),
        ]
        for (kind, batch, side, cin, cout, tiles) in cases {
            let s = Conv2DShape(batch: batch, inChannels: cin, height: side, width: side, outChannels: cout, kernelH: 3,
                                kernelW: 3, stride: 1, padding: .symmetric(1))
            XCTAssertEqual(kind.tiles(s), tiles)
            XCTAssertTrue(winogradUsesPanels(tiles: tiles), "\(s) must take the panels")
            let x = rng.tensor([batch, cin, side, side]), w = rng.tensor([cout, cin, 3, 3]), b = rng.tensor([cout])
            let want = naiveConv(x.toArray(), w.toArray(), b.toArray(), s)
            for pool in testPools {
                func run(panels: Bool) -> [Float] {
                    let y = Tensor(zeros: [batch, cout, side, side])
                    y.fill(.nan)
                    conv2dWinograd(x.data, weight: .f32(w.data), bias: b.data, shape: s, tile: kind, output: y.data,
                                   pool: pool, panels: panels)
                    return y.toArray()
                }
                let panels = run(panels: true), whole = run(panels: false)
                XCTAssertEqual(panels.map(\.bitPattern), whole.map(\.bitPattern),
                               "\(kind) \(s) threads=\(pool.threadCount): panels against the whole U")
                assertClose(panels, want, atol: kind == .f2 ? 1e-4 : 1e-3, "\(kind) \(s) threads=\(pool.threadCount)")
            }
        }
    }

    /// F(4×4, 3×3) rounds more than F(2×2) (coefficients up to 8 and 1/24), so its cases are
    /// checked against the direct convolution in Double, with the error bounded the way a
    /// floating-point dot product's is: by a multiple of ε·Σ|x·w| over the receptive field
    /// (here 64 ulps of that ℓ1 sum, 2⁻¹⁷; plain fp32 summation of K terms is only bounded
    /// by K ulps, and K = 9·C ≥ 1152 here).
    func testWinogradF4AgainstDirectConvolutionInDouble() {
        var rng = TestRNG(seed: 11)
        // Edge tiles on every side, partial 8-tile groups, 36-column spans inside the image.
        let shapes = [
            Conv2DShape(batch: 1, inChannels: 128, height: 45, width: 50, outChannels: 136, kernelH: 3, kernelW: 3,
                        stride: 1, padding: .symmetric(1)),
            Conv2DShape(batch: 2, inChannels: 131, height: 40, width: 40, outChannels: 128, kernelH: 3, kernelW: 3,
                        stride: 1, padding: Conv2DPadding(top: 0, left: 1, bottom: 1, right: 0)),
            Conv2DShape(batch: 1, inChannels: 128, height: 38, width: 70, outChannels: 129, kernelH: 3, kernelW: 3,
                        stride: 1, padding: .symmetric(0)),
        ]
        for pool in testPools {
            for s in shapes {
                XCTAssertEqual(winogradTile(for: s), .f4, "\(s) must take the F(4×4) path")
                let x = rng.tensor([s.batch, s.inChannels, s.height, s.width])
                let w = rng.tensor([s.outChannels, s.inChannels, 3, 3]), b = rng.tensor([s.outChannels])
                let y = Tensor(zeros: [s.batch, s.outChannels, s.outHeight, s.outWidth])
                y.fill(.nan)
                conv2d(x, weight: w, bias: b, stride: 1, padding: s.padding, output: y, pool: pool)
                let xs = x.toArray(), ws = w.toArray(), bs = b.toArray(), ys = y.toArray()
                let ho = s.outHeight, wo = s.outWidth
                var worst = 0.0
                for n in 0..<s.batch { for o in 0..<s.outChannels { for oy in 0..<ho { for ox in 0..<wo {
                    var acc = Double(bs[o]), l1 = abs(Double(bs[o]))
                    for c in 0..<s.inChannels { for ky in 0..<3 { for kx in 0..<3 {
                        let iy = oy - s.padding.top + ky, ix = ox - s.padding.left + kx
                        if iy < 0 || iy >= s.height || ix < 0 || ix >= s.width { continue }
                        let p = Double(xs[((n * s.inChannels + c) * s.height + iy) * s.width + ix])
                            * Double(ws[((o * s.inChannels + c) * 3 + ky) * 3 + kx])
                        acc += p; l1 += abs(p)
                    } } }
                    let got = Double(ys[((n * s.outChannels + o) * ho + oy) * wo + ox])
                    worst = max(worst, abs(got - acc) / (l1 * 0x1p-17))
                } } } }
                XCTAssertLessThanOrEqual(worst, 1, "\(s) threads=\(pool.threadCount): error / (2⁻¹⁷·Σ|x·w|)")
            }
        }
    }

    func testWinogradIsChosenForLargeThreeByThree() {
        let big = Conv2DShape(batch: 2, inChannels: 320, height: 64, width: 64, outChannels: 320, kernelH: 3, kernelW: 3,
                              stride: 1, padding: .symmetric(1))
        XCTAssertNotNil(winogradTile(for: big))
        var strided = big; strided.stride = 2
        XCTAssertNil(winogradTile(for: strided))
        var tiny = big; tiny.height = 8; tiny.width = 8; tiny.batch = 1   // 16 tiles: the weight transform would dominate
        XCTAssertNil(winogradTile(for: tiny))
        XCTAssertNotNil(winogradTile(for: Conv2DShape(batch: 2, inChannels: 17, height: 45, width: 46, outChannels: 19,
                                                  kernelH: 3, kernelW: 3, stride: 1, padding: .symmetric(1))))
        // F(4×4) at SD's 64² and 32² levels; F(2×2) for narrow layers and where U would outgrow its budget.
        XCTAssertEqual(winogradTile(for: big), .f4)
        var level1 = big; level1.batch = 1; level1.inChannels = 1280; level1.outChannels = 640; level1.height = 32; level1.width = 32
        XCTAssertEqual(winogradTile(for: level1), .f4, "64 4×4 tiles at batch 1")
        var level2 = level1; level2.height = 16; level2.width = 16; level2.inChannels = 640
        XCTAssertEqual(winogradTile(for: level2), .f2, "16 4×4 and 64 2×2 tiles")
        level2.height = 8; level2.width = 8; level2.batch = 2
        XCTAssertEqual(winogradTile(for: level2), CPUFeatures.useAVX512Kernels ? .f2 : nil,
                       "32 2×2 tiles: F(2×2) on panels with AVX-512, else im2col")
        level2.batch = 1
        XCTAssertNil(winogradTile(for: level2), "16 2×2 tiles: im2col")
        level2.batch = 2; level2.inChannels = 64
        XCTAssertNil(winogradTile(for: level2), "32 tiles of a narrow layer: im2col")
        var wide = big; wide.inChannels = 1280; wide.outChannels = 1280; wide.height = 32; wide.width = 32
        XCTAssertEqual(winogradTile(for: wide), .f2)
        var narrow = big; narrow.inChannels = 64; narrow.outChannels = 64
        XCTAssertEqual(winogradTile(for: narrow), .f2)
    }

    func testShapeArithmetic() {
        let s = Conv2DShape(batch: 2, inChannels: 4, height: 64, width: 64, outChannels: 8, kernelH: 3, kernelW: 3,
                            stride: 2, padding: .symmetric(1))
        XCTAssertEqual(s.outHeight, 32); XCTAssertEqual(s.outWidth, 32)
        XCTAssertEqual(s.flops, 2 * Double(2 * 8 * 32 * 32) * Double(4 * 9))
    }
}
