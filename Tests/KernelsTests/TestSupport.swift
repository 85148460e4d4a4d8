import XCTest
import Foundation
@testable import Kernels

/// Deterministic pseudo-random floats (SplitMix64) so failures reproduce.
struct TestRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    mutating func uniform(_ lo: Float = -1, _ hi: Float = 1) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
    mutating func array(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] { (0..<n).map { _ in uniform(lo, hi) } }
    mutating func tensor(_ shape: [Int], _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
        Tensor(shape: shape, values: array(Tensor.elementCount(shape), lo, hi))
    }
}

/// Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise, reporting the worst index.
func assertClose(_ actual: [Float], _ expected: [Float], atol: Float = 1e-5, rtol: Float = 1e-4,
                 _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(what): count", file: file, line: line)
    guard actual.count == expected.count else { return }
    var worst = -1
    var worstExcess: Float = 0
    for i in 0..<actual.count {
        let err = abs(actual[i] - expected[i])
        let excess = err - (atol + rtol * abs(expected[i]))
        if !(excess <= 0) && (worst < 0 || !(excess <= worstExcess)) { worst = i; worstExcess = excess }
    }
    if worst >= 0 {
        XCTFail("\(what): index \(worst) got \(actual[worst]), want \(expected[worst])", file: file, line: line)
    }
}

/// A linear layer's y[r][o] = bias[o] + Σ_i x[r][i]·w[o][i] in fp64 (x rows `ldx` apart, k by
/// default), and Σ|x·w| + |bias| as the error scale `assertWithinScale` takes.
func linearReference(_ x: [Float], _ w: [Float], _ bias: [Float]?, rows: Int, k: Int, n: Int,
                     ldx: Int? = nil) -> ([Double], [Double]) {
    let lx = ldx ?? k
    var y = [Double](repeating: 0, count: rows * n), scale = y
    for r in 0..<rows {
        for o in 0..<n {
            var s = Double(bias?[o] ?? 0), a = Double(abs(bias?[o] ?? 0))
            for i in 0..<k {
                let p = Double(x[r * lx + i]) * Double(w[o * k + i])
                s += p
                a += abs(p)
            }
            y[r * n + o] = s
            scale[r * n + o] = a
        }
    }
    return (y, scale)
}

/// `w` packed for the linear product (`WeightTensor.packedForLinear`); fails where it does not pack.
func packedLinearWeight(_ w: Tensor, file: StaticString = #filePath, line: UInt = #line) throws -> WeightTensor {
    try XCTUnwrap(WeightTensor(w).packedForLinear(), "weight \(w.shape) did not pack", file: file, line: line)
}

/// |got − want| ≤ `bound` · scale elementwise (the linear products' bound against an fp64
/// reference: 2e-6 of the sum of the terms' magnitudes); a NaN anywhere fails.
func assertWithinScale(_ got: [Float], _ want: [Double], scale: [Double], bound: Double = 2e-6, _ what: String,
                       file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, want.count, what, file: file, line: line)
    var worst = 0, worstErr = 0.0
    for i in 0..<min(got.count, want.count) {
        let err = abs(Double(got[i]) - want[i]) / max(scale[i], 1e-12)
        // `!(err <= worstErr)` also takes a NaN, which a plain `>` would pass over.
        if !(err <= worstErr) { worstErr = err.isNaN ? .infinity : err; worst = i }
    }
    if got.isEmpty || want.isEmpty { return }
    XCTAssertLessThanOrEqual(worstErr, bound, "\(what): output \(worst) is \(got[worst]), want \(want[worst])",
                             file: file, line: line)
}


/// Pools with 1 and 3 threads, so tests cover both the serial path and uneven splits.
let testPools: [ThreadPool] = [ThreadPool(threadCount: 1), ThreadPool(threadCount: 3)]
