import XCTest
@testable import Kernels
import KernelsAVX512

/// The AVX-512 builds of the softmax passes against Kernels' AVX2 ones (the products are
/// checked through `attention` in AttentionTests, on both paths). Skipped on CPUs without
/// AVX-512, where that code never runs.
final class AVX512KernelTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(CPUFeatures.hasAVX512, "this CPU has no AVX-512")
    }

    func testExpGivesVexpsBits() {
        // The two copies of the polynomial must agree bit for bit, clamped ends included.
        var inputs: [Float] = [-100, -87.4, -87.3, -50, -1e-8, 0, 1e-8, 0.5, 1, 10, 88.3, 88.4, 100]
        var x: Float = -90
        while x < 90 { inputs.append(x); x += 0.0137 }
        while inputs.count % 16 != 0 { inputs.append(0.25) }
        for start in stride(from: 0, to: inputs.count, by: 16) {
            var v16 = SIMD16<Float>()
            for i in 0..<16 { v16[i] = inputs[start + i] }
            let e16 = AVX512Softmax.exp(v16)
            for i in 0..<16 {
                let want = vexp(VFloat(repeating: inputs[start + i]))[0]
                XCTAssertEqual(e16[i].bitPattern, want.bitPattern, "e^\(inputs[start + i]): \(e16[i]) vs \(want)")
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
        }
    }
}
