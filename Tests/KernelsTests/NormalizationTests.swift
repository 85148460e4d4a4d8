import XCTest
import Foundation
@testable import Kernels

final class NormalizationTests: XCTestCase {
    func naiveGroupNorm(_ x: [Float], n: Int, c: Int, spatial: Int, groups: Int, gamma: [Float]?, beta: [Float]?,
                        eps: Float, silu: Bool) -> [Float] {
        var out = x
        let per = c / groups
        for b in 0..<n { for g in 0..<groups {
            let base = (b * c + g * per) * spatial, len = per * spatial
            var mean = 0.0, variance = 0.0
            for i in 0..<len { mean += Double(x[base + i]) }
            mean /= Double(len)
            for i in 0..<len { variance += pow(Double(x[base + i]) - mean, 2) }
            variance /= Double(len)
            for i in 0..<len {
                let ch = g * per + i / spatial
                var v = (Double(x[base + i]) - mean) / sqrt(variance + Double(eps))
                v = v * Double(gamma?[ch] ?? 1) + Double(beta?[ch] ?? 0)
                if silu { v = v / (1 + exp(-v)) }
                out[base + i] = Float(v)
            }
        } }
        return out
    }

    func testGroupNorm() {
        var rng = TestRNG(seed: 6)
        for pool in testPools {
            for (n, c, h, w, groups) in [(1, 4, 3, 3, 2), (2, 6, 5, 7, 3), (2, 32, 9, 9, 32), (3, 12, 1, 1, 4), (1, 64, 17, 13, 32)] {
                let x = rng.tensor([n, c, h, w], -2, 3), gamma = rng.tensor([c]), beta = rng.tensor([c])
                for silu in [false, true] { for affine in [false, true] {
                    let y = Tensor(zeros: x.shape)
                    groupNorm(x, groups: groups, gamma: affine ? gamma : nil, beta: affine ? beta : nil, eps: 1e-5,
                              silu: silu, output: y, pool: pool)
                    let want = naiveGroupNorm(x.toArray(), n: n, c: c, spatial: h * w, groups: groups,
                                              gamma: affine ? gamma.toArray() : nil, beta: affine ? beta.toArray() : nil,
                                              eps: 1e-5, silu: silu)
                    assertClose(y.toArray(), want, atol: 2e-5, rtol: 1e-4, "groupNorm \(x.shape) g=\(groups) silu=\(silu) affine=\(affine)")
                } }
            }
        }
        // In place.
        let x = rng.tensor([2, 8, 5, 5])
        let want = naiveGroupNorm(x.toArray(), n: 2, c: 8, spatial: 25, groups: 4, gamma: nil, beta: nil, eps: 1e-6, silu: true)
        groupNorm(x, groups: 4, gamma: nil, beta: nil, eps: 1e-6, silu: true, output: x, pool: .shared)
        assertClose(x.toArray(), want, atol: 2e-5, "groupNorm in place")
    }

    func testLayerNorm() {
        var rng = TestRNG(seed: 7)
        for pool in testPools {
            for (rows, d) in [(1, 1), (3, 7), (77, 33), (10, 768), (5, 1000)] {
                let x = rng.tensor([rows, d], -3, 5), g = rng.tensor([d]), b = rng.tensor([d])
                for affine in [false, true] {
                    let y = Tensor(zeros: x.shape)
                    layerNorm(x, gamma: affine ? g : nil, beta: affine ? b : nil, eps: 1e-5, output: y, pool: pool)
                    let xa = x.toArray(), ga = g.toArray(), ba = b.toArray()
                    var want = [Float](repeating: 0, count: rows * d)
                    for r in 0..<rows {
                        let row = xa[(r * d)..<((r + 1) * d)].map(Double.init)
                        let mean = row.reduce(0, +) / Double(d)
                        let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d)
                        for i in 0..<d {
                            var v = (row[i] - mean) / sqrt(variance + 1e-5)
                            if affine { v = v * Double(ga[i]) + Double(ba[i]) }
                            want[r * d + i] = Float(v)
                        }
                    }
                    assertClose(y.toArray(), want, atol: 2e-5, "layerNorm \(rows)x\(d) affine=\(affine)")
                }
            }
        }
    }
}
