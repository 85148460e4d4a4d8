import XCTest
import Foundation
@testable import Kernels

final class ElementwiseTests: XCTestCase {
    func testAddAndPerChannel() {
        var rng = TestRNG(seed: 10)
        let a = rng.tensor([2, 3, 5, 7]), b = rng.tensor([2, 3, 5, 7])
        let want = zip(a.toArray(), b.toArray()).map { $0 + $1 }
        let out = Tensor(zeros: a.shape)
        add(a, b, output: out, pool: testPools[1])
        XCTAssertEqual(out.toArray(), want)
        add(a, b, output: a, pool: .shared)   // residual in place
        XCTAssertEqual(a.toArray(), want)

        let v = rng.tensor([2, 3])
        let before = out.toArray()
        addPerChannel(out, v, pool: testPools[1])
        let va = v.toArray()
        XCTAssertEqual(out.toArray(), before.enumerated().map { $0.element + va[$0.offset / 35] })

        let sc = Tensor(zeros: a.shape)
        scale(b, by: -2, output: sc, pool: .shared)
        XCTAssertEqual(sc.toArray(), b.toArray().map { $0 * -2 })
    }

    func testAddChannelBias() {
        var rng = TestRNG(seed: 14)
        // Spatial sizes below, at and across the vector width, so both the vector loop and
        // the scalar tail run.
        for (n, c, h, w) in [(1, 1, 1, 1), (2, 3, 2, 4), (2, 5, 3, 7), (1, 4, 17, 3)] {
            let x = rng.tensor([n, c, h, w]), bias = rng.tensor([c])
            let xa = x.toArray(), ba = bias.toArray()
            let want = xa.enumerated().map { $0.element + ba[($0.offset / (h * w)) % c] }
            for pool in testPools {
                let out = Tensor(zeros: x.shape)
                addChannelBias(x, bias, output: out, pool: pool)
                XCTAssertEqual(out.toArray(), want)
            }
            addChannelBias(x, bias, output: x, pool: testPools[1])   // in place
            XCTAssertEqual(x.toArray(), want)
        }
    }

    func testConcatChannels() {
        var rng = TestRNG(seed: 11)
        let a = rng.tensor([2, 3, 2, 3]), b = rng.tensor([2, 5, 2, 3])
        let out = Tensor(zeros: [2, 8, 2, 3])
        concatChannels(a, b, output: out, pool: testPools[1])
        let aa = a.toArray(), ba = b.toArray()
        let want = Array(aa[0..<18]) + Array(ba[0..<30]) + Array(aa[18..<36]) + Array(ba[30..<60])
        XCTAssertEqual(out.toArray(), want)
    }

    func testUpsampleNearest() {
        var rng = TestRNG(seed: 12)
        for (n, c, h, w) in [(1, 1, 1, 1), (2, 3, 3, 5), (1, 2, 4, 9)] {
            let x = rng.tensor([n, c, h, w])
            let y = Tensor(zeros: [n, c, 2 * h, 2 * w])
            upsampleNearest2x(x, output: y, pool: testPools[1])
            let xa = x.toArray(), ya = y.toArray()
            for p in 0..<(n * c) { for oy in 0..<(2 * h) { for ox in 0..<(2 * w) {
                XCTAssertEqual(ya[(p * 2 * h + oy) * 2 * w + ox], xa[(p * h + oy / 2) * w + ox / 2])
            } } }
        }
    }

    func testSoftmax() {
        var rng = TestRNG(seed: 13)
        for d in [1, 5, 8, 77, 1000] {
            var values = rng.array(3 * d, -20, 20)
            values[0] = 500   // large values stay finite (max subtraction)
            let x = Tensor(shape: [3, d], values: values)
            let y = Tensor(zeros: [3, d])
            softmax(x, output: y, pool: testPools[1])
            var want = [Float]()
            for r in 0..<3 {
                let row = values[(r * d)..<((r + 1) * d)].map(Double.init)
                let m = row.max() ?? 0
                let e = row.map { exp($0 - m) }
                let s = e.reduce(0, +)
                want += e.map { Float($0 / s) }
            }
            assertClose(y.toArray(), want, atol: 1e-7, rtol: 1e-5, "softmax d=\(d)")
        }
    }

    /// diffusers get_timestep_embedding(torch.tensor([0, 1, 999.0]), 8, flip_sin_to_cos=True,
    /// downscale_freq_shift=0) evaluated by hand from its formula.
    func testTimestepEmbedding() {
        for (dim, flip, shift, scaleValue) in [(8, true, Float(0), Float(1)), (7, false, Float(1), Float(1)), (320, true, Float(0), Float(1)), (6, false, Float(1), Float(2))] {
            let ts: [Float] = [0, 1, 999, 500.5]
            let out = Tensor(zeros: [ts.count, dim])
            timestepEmbedding(ts, dim: dim, flipSinToCos: flip, downscaleFreqShift: shift, scale: scaleValue, output: out)
            let half = dim / 2
            var want = [Float]()
            for t in ts {
                var s = [Float](), c = [Float]()
                for i in 0..<half {
                    let freq = exp(-log(10_000.0) * Double(i) / (Double(half) - Double(shift)))
                    let arg = Double(scaleValue) * Double(t) * freq
                    s.append(Float(sin(arg))); c.append(Float(cos(arg)))
                }
                var row = flip ? c + s : s + c
                if dim % 2 == 1 { row.append(0) }
                want += row
            }
            // float32 argument rounding at t = 999 limits agreement to ~1e-4.
            assertClose(out.toArray(), want, atol: 3e-4, rtol: 0, "timestep dim=\(dim)")
        }
        // Exact spot values: t = 0 gives cos = 1, sin = 0.
        let out = Tensor(zeros: [1, 4])
        timestepEmbedding([0], dim: 4, flipSinToCos: true, downscaleFreqShift: 1, output: out)
        XCTAssertEqual(out.toArray(), [1, 1, 0, 0])
    }
}
