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

    /// Calls small enough to run inline (range ≤ grain) from two outside threads: each runs as
    /// worker 0, so they must not overlap, or both would write worker 0's scratch at once.
    func testInlineCallsFromTwoOutsideThreadsDoNotOverlap() {
        let pool = ThreadPool(threadCount: 2)
        let overlaps = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        overlaps.initialize(repeating: 0, count: 2)
        defer { overlaps.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 2) { t in
            for _ in 0..<2000 {
                pool.parallelFor(0..<1, grain: 1) { _, worker in
                    let s = pool.scratch(worker: worker, count: 64)
                    for i in 0..<64 { s[i] = Float(t) }
                    for _ in 0..<20 { for i in 0..<64 where s[i] != Float(t) { overlaps[t] += 1 } }
                }
            }
        }
        XCTAssertEqual([overlaps[0], overlaps[1]], [0, 0])
    }

    func testSoloPoolsRunTheirWorkInsideTheItemsOfTheirPool() {
        // One single-thread pool per thread, the same ones on every call; inside an item of the
        // parent's parallelFor each runs its own parallelFor (not inline on the parent's
        // worker) and may take its shared scratch, which the parent's worker may not.
        let pool = ThreadPool(threadCount: 3)
        let solos = pool.soloPools
        XCTAssertEqual(solos.count, 3)
        XCTAssertEqual(solos.map(\.threadCount), [1, 1, 1])
        XCTAssertTrue(zip(solos, pool.soloPools).allSatisfy { $0 === $1 }, "made once")
        XCTAssertTrue(solos[0] !== solos[1] && solos[1] !== solos[2] && solos[0] !== solos[2], "one pool per item")
        var sums = [Int](repeating: 0, count: 3)
        sums.withUnsafeMutableBufferPointer { s in
            let p = s.baseAddress!
            pool.parallelFor(0..<3) { items, _ in
                for item in items {
                    let solo = solos[item]
                    XCTAssertTrue(pool.isInsideWorker)
                    XCTAssertFalse(solo.isInsideWorker)
                    solo.withSharedScratch(count: 100) { shared in
                        solo.parallelFor(0..<100) { r, worker in
                            XCTAssertEqual(worker, 0)
                            for i in r { shared[i] = Float(i + item) }
                        }
                        p[item] = (0..<100).reduce(0) { $0 + Int(shared[$1]) }
                    }
                }
            }
        }
        XCTAssertEqual(sums, (0..<3).map { 4950 + 100 * $0 })
    }

    /// Back-to-back calls (workers still polling for the next job), calls after a pause (workers
    /// asleep), and pools that never poll: every call's writes are all there the moment it
    /// returns, and no wake-up is lost (a lost one would hang: the calls run on a helper thread
    /// the test gives up on after a minute).
    func testEveryCallsWritesAreVisibleWhenItReturnsWhetherThreadsPollOrSleep() {
        for spin in [0, 1, 300] {
            let pool = ThreadPool(threadCount: 3, spinMicroseconds: spin)
            XCTAssertEqual(pool.spinMicroseconds, spin)
            let n = 64, calls = 3000
            let buffer = UnsafeMutablePointer<Int>.allocate(capacity: n)
            buffer.initialize(repeating: -1, count: n)
            defer { buffer.deallocate() }
            let mismatches = UnsafeMutablePointer<Int>.allocate(capacity: 1)
            mismatches.initialize(to: 0)
            defer { mismatches.deallocate() }
            let finished = DispatchSemaphore(value: 0)
            Thread {
                for call in 0..<calls {
                    if call % 500 == 0 { usleep(2000) }  // past the polling (300 µs at most): the workers sleep
                    pool.parallelFor(0..<n) { r, _ in for i in r { buffer[i] = call * n + i } }
                    for i in 0..<n where buffer[i] != call * n + i { mismatches.pointee += 1 }
                }
                finished.signal()
            }.start()
            XCTAssertEqual(finished.wait(timeout: .now() + 60), .success, "spin \(spin): a call never returned")
            XCTAssertEqual(mismatches.pointee, 0, "spin \(spin)")
        }
        XCTAssertEqual(ThreadPool(threadCount: 2, spinMicroseconds: -5).spinMicroseconds, 0)
    }

    /// Many calls with a chunk per thread and next to no work (`kernels --only dispatch`): the
    /// caller returns at once after the workers, and `parallelFor`'s `withoutActuallyEscaping`
    /// traps if a worker still holds the body then (as it did when the caller waited on the
    /// polled count alone).
    func testTinyBackToBackCallsReturnOnlyOnceTheWorkersLetGoOfTheBody() {
        let pool = ThreadPool(threadCount: 2, spinMicroseconds: 300)
        var sink = [Int](repeating: 0, count: 2)
        sink.withUnsafeMutableBufferPointer { s in
            let p = s.baseAddress!
            for _ in 0..<20_000 { pool.parallelFor(0..<2) { r, _ in for i in r { p[i] += 1 } } }
        }
        XCTAssertEqual(sink, [20_000, 20_000])
    }

    func testScratchIsPerWorkerAndGrows() {
        let pool = ThreadPool(threadCount: 2)
        let a = pool.scratch(worker: 0, count: 10)
        XCTAssertEqual(pool.scratch(worker: 0, count: 5), a)
        XCTAssertNotEqual(pool.scratch(worker: 1, count: 10), a)
        XCTAssertEqual(Int(bitPattern: pool.scratch(worker: 0, count: 100_000)) % 64, 0)
    }
}
