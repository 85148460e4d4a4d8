import XCTest
@testable import Kernels

final class TransposeTests: XCTestCase {
    /// Every element lands where dst[j][i] = src[i][j] (+ addend[j][i]) puts it, bit for bit: shapes
    /// of whole 16 × 16 squares, edges in rows, columns or both, one or two matrices, one
    /// or two workers, with and without the addend (the residual of `proj_out`).
    func testTransposeMatchesTheDefinition() {
        var rng = TestRNG(seed: 77)
        for (rows, cols, count) in [(32, 48, 1), (37, 45, 2), (16, 5, 1), (3, 70, 2), (64, 1024, 1), (1, 1, 1)] {
            let src = rng.tensor([count, rows, cols]), addend = rng.tensor([count, cols, rows])
            let s = src.toArray(), a = addend.toArray()
            for adding in [false, true] {
                var want = [Float](repeating: 0, count: s.count)
                for m in 0..<count {
                    for i in 0..<rows {
                        for j in 0..<cols {
                            let at = m * rows * cols + j * rows + i
                            let value = s[m * rows * cols + i * cols + j]
                            want[at] = adding ? value + a[at] : value
                        }
                    }
                }
                for pool in testPools {
                    let dst = Tensor(zeros: [count, cols, rows])
                    transpose(src.data, rows: rows, cols: cols, count: count, adding: adding ? UnsafePointer(addend.data) : nil,
                              into: dst.data, pool: pool)
                    XCTAssertEqual(dst.toArray(), want, "\(rows)×\(cols)×\(count) adding \(adding), \(pool.threadCount) threads")
                }
            }
        }
    }

    /// The addend may be the destination itself (the residual added in place).
    func testTransposeAddsInPlace() {
        var rng = TestRNG(seed: 78)
        let src = rng.tensor([20, 33]), acc = rng.tensor([33, 20])
        let before = acc.toArray(), s = src.toArray()
        transpose(src.data, rows: 20, cols: 33, adding: UnsafePointer(acc.data), into: acc.data, pool: .shared)
        let got = acc.toArray()
        for j in 0..<33 { for i in 0..<20 { XCTAssertEqual(got[j * 20 + i], before[j * 20 + i] + s[i * 33 + j]) } }
    }
}
