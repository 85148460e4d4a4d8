import XCTest
import Foundation
@testable import Kernels

final class ActivationTests: XCTestCase {
    static func reference(_ a: Activation, _ x: Float) -> Float {
        let d = Double(x)
        switch a {
        case .silu: return Float(d / (1 + exp(-d)))
        case .gelu: return Float(0.5 * d * (1 + erf(d / 2.0.squareRoot())))
        case .geluTanh: return Float(0.5 * d * (1 + tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d))))
        case .quickGelu: return Float(d / (1 + exp(-1.702 * d)))
        case .relu: return max(x, 0)
        }
    }

    func testActivationsAgainstLibm() {
        var rng = TestRNG(seed: 8)
        var values = rng.array(1001, -12, 12)
        values += [0, -0, 1e-7, -1e-7, 80, -80, 200, -200]
        for pool in testPools {
            for act in Activation.allCases {
                let x = Tensor(shape: [values.count], values: values)
                let y = Tensor(zeros: [values.count])
                activate(act, x, output: y, pool: pool)
                assertClose(y.toArray(), values.map { Self.reference(act, $0) }, atol: 2e-6, rtol: 2e-6, "\(act)")
                activate(act, x, output: x, pool: pool)   // in place
                assertClose(x.toArray(), y.toArray(), atol: 0, rtol: 0, "\(act) in place")
            }
        }
    }

    func testConfigNames() {
        XCTAssertEqual(Activation(configName: "quick_gelu"), .quickGelu)
        XCTAssertEqual(Activation(configName: "gelu"), .gelu)
        XCTAssertEqual(Activation(configName: "silu"), .silu)
        XCTAssertEqual(Activation(configName: "relu"), .relu)
        XCTAssertNil(Activation(configName: "relu6"))
    }

    func testGEGLU() {
        var rng = TestRNG(seed: 9)
        for pool in testPools {
            for (rows, d) in [(1, 1), (3, 5), (7, 8), (20, 37), (4, 56)] {   // 37, 56: 16-lane blocks, then 8, then a tail
                let x = rng.tensor([2, rows, 2 * d], -4, 4)
                let y = Tensor(zeros: [2, rows, d])
                geglu(x, output: y, pool: pool)
                let xa = x.toArray()
                var want = [Float](repeating: 0, count: 2 * rows * d)
                for r in 0..<(2 * rows) { for i in 0..<d {
                    want[r * d + i] = xa[r * 2 * d + i] * Self.reference(.gelu, xa[r * 2 * d + d + i])
                } }
                assertClose(y.toArray(), want, atol: 2e-6, rtol: 2e-6, "geglu \(rows)x\(d)")
            }
        }
    }
}
