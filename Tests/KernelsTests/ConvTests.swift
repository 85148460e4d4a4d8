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
        ]
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
                    assertClose(y.toArray(), want, atol: 1e-4, "conv \(s) bias=\(useBias) threads=\(pool.threadCount)")
                }
            }
        }
    }

    func testWinogradIsChosenForLargeThreeByThree() {
        let big = Conv2DShape(batch: 2, inChannels: 320, height: 64, width: 64, outChannels: 320, kernelH: 3, kernelW: 3,
                              stride: 1, padding: .symmetric(1))
        XCTAssertTrue(winogradApplies(big))
        var strided = big; strided.stride = 2
        XCTAssertFalse(winogradApplies(strided))
        var tiny = big; tiny.height = 8; tiny.width = 8   // 2·16 tiles: the weight transform would dominate
        XCTAssertFalse(winogradApplies(tiny))
        XCTAssertTrue(winogradApplies(Conv2DShape(batch: 2, inChannels: 17, height: 45, width: 46, outChannels: 19,
                                                  kernelH: 3, kernelW: 3, stride: 1, padding: .symmetric(1))))
    }

    func testShapeArithmetic() {
        let s = Conv2DShape(batch: 2, inChannels: 4, height: 64, width: 64, outChannels: 8, kernelH: 3, kernelW: 3,
                            stride: 2, padding: .symmetric(1))
        XCTAssertEqual(s.outHeight, 32); XCTAssertEqual(s.outWidth, 32)
        XCTAssertEqual(s.flops, 2 * Double(2 * 8 * 32 * 32) * Double(4 * 9))
    }
}
