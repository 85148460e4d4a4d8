import XCTest
@testable import Kernels

/// `fmaPeak` (diffusion-bench's "fma peak"): the FLOPs it reports are the FMAs it did, and
/// its chains compute what a scalar loop of the same fused multiply-adds does.
final class FMAPeakTests: XCTestCase {
    func testCountsItsFlopsAndComputesTheChains() {
        let steps = 1000
        let (flops, sink) = fmaPeak(steps: steps)
        #if arch(x86_64)
        let lanes = CPUFeatures.useAVX512Kernels ? 16 : vectorWidth
        #else
        let lanes = vectorWidth
        #endif
        XCTAssertEqual(flops, Double(steps * 12 * lanes * 2))
        // Chain i starts at 1 + i/100 and takes a ← a·0.999999 + 1e-7 every step, in every lane.
        var want = 0.0
        for i in 0..<12 {
            var a = Float(1) + Float(i) / 100
            for _ in 0..<steps { a = Float(1e-7).addingProduct(a, Float(0.999_999)) }
            want += Double(a) * Double(lanes)
        }
        XCTAssertEqual(Double(sink), want, accuracy: want * 1e-5)
    }
}
