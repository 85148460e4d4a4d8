import XCTest
@testable import Kernels

final class ThreadPoolTests: XCTestCase {
    func testEveryIndexRunsExactlyOnce() {
        for pool in testPools {
            for (n, grain) in [(1, 1), (5, 1), (1000, 7), (10_001, 100), (3, 10)] {
                var hits = [Int32](repeating: 0, count: n)
                hits.withUnsafeMutableBufferPointer { h in
                    let p = h.baseAddress!
                    pool.parallelFor(0..<n, grain: grain) { r, worker in
                        XCTAssert(worker >= 0 && worker < pool.threadCount)
                        for i in r { p[i] += 1 }   // disjoint chunks: no race
                    }
                }
                XCTAssertEqual(hits, [Int32](repeating: 1, count: n), "n=\(n) grain=\(grain) threads=\(pool.threadCount)")
            }
        }
    }

    func testNonZeroLowerBoundAndNesting() {
        let pool = testPools[1]
        var sums = [Int](repeating: 0, count: 10)
        sums.withUnsafeMutableBufferPointer { s in
            let p = s.baseAddress!
            pool.parallelFor(5..<15) { r, _ in
                for i in r {
                    var local = 0
                    pool.parallelFor(0..<i) { inner, _ in for j in inner { local += j } }  // inline
                    p[i - 5] = local
                }
            }
        }
        XCTAssertEqual(sums, (5..<15).map { $0 * ($0 - 1) / 2 })
    }

    func testScratchIsPerWorkerAndGrows() {
        let pool = ThreadPool(threadCount: 2)
        let a = pool.scratch(worker: 0, count: 10)
        XCTAssertEqual(pool.scratch(worker: 0, count: 5), a)
        XCTAssertNotEqual(pool.scratch(worker: 1, count: 10), a)
        XCTAssertEqual(Int(bitPattern: pool.scratch(worker: 0, count: 100_000)) % 64, 0)
    }
}
