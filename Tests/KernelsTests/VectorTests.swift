import XCTest
import Foundation
@testable import Kernels

final class VectorTests: XCTestCase {
    func testPrimitivesWithTails() {
        var rng = TestRNG(seed: 1)
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 33, 100] {
            let a = rng.array(n), b = rng.array(n)
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                let x = pa.baseAddress ?? UnsafePointer(bitPattern: 64)!, y = pb.baseAddress ?? UnsafePointer(bitPattern: 64)!
                var dot: Float = 0, sum: Float = 0, mx: Float = -.infinity
                for i in 0..<n { dot += a[i] * b[i]; sum += a[i]; mx = max(mx, a[i]) }
                XCTAssertEqual(vdot(x, y, n), dot, accuracy: 1e-5, "dot n=\(n)")
                XCTAssertEqual(vsum(x, n), sum, accuracy: 1e-5, "sum n=\(n)")
                XCTAssertEqual(vmax(x, n), mx, "max n=\(n)")
            } }
            var y = b
            y.withUnsafeMutableBufferPointer { py in a.withUnsafeBufferPointer { pa in
                if n > 0 { vaxpy(0.5, pa.baseAddress!, py.baseAddress!, n) }
            } }
            assertClose(y, (0..<n).map { b[$0] + 0.5 * a[$0] }, "axpy n=\(n)")
            var z = a
            z.withUnsafeMutableBufferPointer { if n > 0 { vscale($0.baseAddress!, -3, n) } }
            assertClose(z, a.map { -3 * $0 }, "scale n=\(n)")
            var s = a
            s.withUnsafeMutableBufferPointer { ps in b.withUnsafeBufferPointer { pb in
                if n > 0 { vadd(ps.baseAddress!, pb.baseAddress!, ps.baseAddress!, n) }
            } }
            assertClose(s, (0..<n).map { a[$0] + b[$0] }, "add n=\(n)")
        }
    }

    func testFastExpAccuracy() {
        var xs: [Float] = stride(from: -87, through: 88, by: 0.173).map { Float($0) }
        xs += [0, -0, 1e-8, -1e-8, 0.5, -0.5, 1, -1]
        var out = [Float](repeating: 0, count: xs.count)
        xs.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { vexp(x.baseAddress!, $0.baseAddress!, xs.count) } }
        for (i, x) in xs.enumerated() {
            let want = Foundation.exp(Double(x))
            XCTAssertEqual(Double(out[i]), want, accuracy: want * 2e-7, "exp(\(x))")
        }
        XCTAssertEqual(fastExp(-1000), 0, accuracy: 1e-37)
        XCTAssertTrue(fastExp(1000).isFinite)
    }
}
