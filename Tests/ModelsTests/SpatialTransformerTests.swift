import Foundation
import Kernels
import XCTest
@testable import Models

/// The spatial transformer's projections at `packedProjectionChannels` and up, where the AVX-512
/// kernels run, go through the packed product between `transpose` passes; below, or without
/// AVX-512, through the transposing sgemm. Both must compute the same layer.
final class SpatialTransformerTests: XCTestCase {
    func testPackedProjectionsMatchTheTransposingGEMM() throws {
        let c = SpatialTransformer.packedProjectionChannels
        let source = RandomWeightSource(seed: 9, precision: .f32, pool: .shared)
        // Depth 0: group norm, proj_in, proj_out and the residual, the part the two routes differ in.
        let packed = try SpatialTransformer(source, "t", channels: c, heads: 8, depth: 0, crossAttentionDim: 64, groups: 32)
        XCTAssertEqual(PackedLinear.panels(of: packed.projIn.weight.operand, inFeatures: c, outFeatures: c) != nil,
                       CPUFeatures.useAVX512Kernels, "proj_in is packed exactly where the packed product runs")
        var plain = packed
        // Non-zero biases, so the packed product's bias in the accumulators is checked too.
        let biasIn = Tensor(zeros: [c]), biasOut = Tensor(zeros: [c])
        for i in 0..<c { biasIn.data[i] = Float(i % 7) * 0.125 - 0.375; biasOut.data[i] = Float(i % 5) * -0.25 + 0.5 }
        var withBias = packed
        withBias.projIn.bias = biasIn
        withBias.projOut.bias = biasOut
        plain.projIn = LinearWeights(weight: packed.projIn.weight.widened(), bias: biasIn)
        plain.projOut = LinearWeights(weight: packed.projOut.weight.widened(), bias: biasOut)
        XCTAssertNil(PackedLinear.panels(of: plain.projIn.weight.operand, inFeatures: c, outFeatures: c))

        // 4 × 5 positions: the transposes' edges past whole 16 × 16 squares.
        let x = Tensor(zeros: [2, c, 4, 5])
        var state: UInt64 = 3
        for i in 0..<x.count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            x.data[i] = Float(Int64(bitPattern: state >> 11) % 2001) / 1000 - 1
        }
        let context = Tensor(zeros: [2, 7, 64])
        let got = Tensor(zeros: x.shape), want = Tensor(zeros: x.shape)
        withBias(x, context: context, output: got, arena: Arena(), pool: .shared)
        plain(x, context: context, output: want, arena: Arena(), pool: .shared)
        let g = got.toArray(), w = want.toArray(), xs = x.toArray()
        let scale = w.map { abs($0) }.max() ?? 1
        var worst: Float = 0
        for i in 0..<w.count { worst = max(worst, abs(g[i] - w[i])) }
        XCTAssertLessThan(worst, 1e-5 * scale, "largest difference \(worst) against values up to \(scale)")
        // Not the residual alone: the projections added something.
        XCTAssertGreaterThan(zip(w, xs).map { abs($0 - $1) }.max() ?? 0, 0.1)
    }
}
