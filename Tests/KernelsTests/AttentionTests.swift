import XCTest
import Foundation
@testable import Kernels

final class AttentionTests: XCTestCase {
    /// Materialized softmax(QKᵀ/√d)V per batch and head, in Double.
    func naiveAttention(_ q: [Float], _ k: [Float], _ v: [Float], b: Int, nq: Int, nk: Int, heads: Int, d: Int,
                        causal: Bool) -> [Float] {
        let inner = heads * d
        var out = [Float](repeating: 0, count: b * nq * inner)
        for bi in 0..<b { for h in 0..<heads { for i in 0..<nq {
            var scores = [Double](repeating: -.infinity, count: nk)
            for j in 0..<nk where !(causal && j > i) {
                var s = 0.0
                for t in 0..<d { s += Double(q[(bi * nq + i) * inner + h * d + t]) * Double(k[(bi * nk + j) * inner + h * d + t]) }
                scores[j] = s / Double(d).squareRoot()
            }
            let m = scores.max() ?? 0
            let e = scores.map { $0 == -.infinity ? 0 : exp($0 - m) }
            let sum = e.reduce(0, +)
            for t in 0..<d {
                var acc = 0.0
                for j in 0..<nk { acc += e[j] * Double(v[(bi * nk + j) * inner + h * d + t]) }
                out[(bi * nq + i) * inner + h * d + t] = Float(acc / sum)
            }
        } } }
        return out
    }

    func testAttentionAgainstMaterializedSoftmax() {
        var rng = TestRNG(seed: 14)
        // (batch, nq, nk, heads, headDim, causal): self, cross (77 keys), several key tiles,
        // several query tiles, SD head dims 40/64/80/160, causal CLIP-like. Head dim 40 takes the
        // fused path (AttentionTiles.swift): odd row counts and key counts that end mid-strip; on
        // AVX-512 its value tile takes keys in pairs and rows in fours, so odd key counts (77,
        // 33, 5, and causal blocks that end at an odd last key) and 1–3 rows left over (301, 6,
        // 7, 13) each have a case.
        let cases: [(Int, Int, Int, Int, Int, Bool)] = [
            (1, 1, 1, 1, 1, false), (2, 5, 3, 2, 4, false), (2, 64, 77, 2, 40, false),
            (1, 301, 1030, 2, 40, false), (2, 77, 77, 2, 40, true), (1, 1, 5, 1, 40, false),
            (1, 600, 600, 1, 40, true), (2, 6, 77, 2, 40, false), (1, 7, 33, 1, 40, false),
            (1, 300, 1100, 1, 64, false), (2, 130, 130, 3, 80, false), (1, 17, 77, 2, 160, false),
            (2, 77, 77, 3, 64, true), (1, 600, 600, 1, 8, true), (1, 9, 9, 2, 3, true),
            // Causal self-attention up to 128 tokens at head dims of whole 16s takes its own path
            // on AVX-512 (ShortCausalAttentionAVX512.swift): one token; one strip of 16 queries;
            // an odd strip count (strip 0 alone) with a partial last strip; whole pairs; 128 at
            // head dim 128; and 129, one past it.
            (1, 1, 1, 1, 64, true), (1, 16, 16, 1, 16, true), (2, 33, 33, 2, 32, true), (1, 48, 48, 2, 64, true),
            (1, 64, 64, 1, 48, true), (1, 128, 128, 1, 128, true), (1, 129, 129, 1, 64, true),
        ]
        // Every case on each kernel build this CPU runs: AVX2, and AVX-512 where it has it.
        let saved = CPUFeatures.useAVX512Kernels
        defer { CPUFeatures.useAVX512Kernels = saved }
        for avx512 in CPUFeatures.hasAVX512 ? [false, true] : [false] {
        CPUFeatures.useAVX512Kernels = avx512
        for pool in testPools {
            for (b, nq, nk, heads, d, causal) in cases {
                let inner = heads * d
                let q = rng.tensor([b, nq, inner], -2, 2), k = rng.tensor([b, nk, inner], -2, 2), v = rng.tensor([b, nk, inner])
                let out = Tensor(zeros: [b, nq, inner])
                out.fill(.nan)
                attention(query: q, key: k, value: v, heads: heads, causal: causal, output: out, pool: pool)
                let want = naiveAttention(q.toArray(), k.toArray(), v.toArray(), b: b, nq: nq, nk: nk, heads: heads, d: d, causal: causal)
                assertClose(out.toArray(), want, atol: 2e-5, rtol: 1e-4,
                            "attention b=\(b) nq=\(nq) nk=\(nk) h=\(heads) d=\(d) causal=\(causal) avx512=\(avx512)")
            }
        }
        }
    }

    func testHeadDim40InsideAWorker() {
        // Nested inside a pool worker the fused path (which needs the shared scratch) is not taken.
        var rng = TestRNG(seed: 16)
        let (b, n, heads, d) = (1, 70, 2, 40)
        let q = rng.tensor([b, n, heads * d]), k = rng.tensor([b, n, heads * d]), v = rng.tensor([b, n, heads * d])
        let out = Tensor(zeros: [b, n, heads * d])
        let pool = testPools[1]
        pool.parallelFor(0..<1) { _, _ in
            attention(query: q, key: k, value: v, heads: heads, output: out, pool: pool)
        }
        assertClose(out.toArray(), naiveAttention(q.toArray(), k.toArray(), v.toArray(), b: b, nq: n, nk: n, heads: heads, d: d, causal: false),
                    atol: 2e-5, "head dim 40 inside a worker")
    }

    /// Two threads of a library user running attention on one pool at once: the fused path's
    /// key panels live in the pool's shared scratch across two parallelFor calls, which must
    /// not be the other thread's (each outside thread has its own).
    func testTwoOutsideThreadsShareAPool() {
        let pool = ThreadPool(threadCount: 2)
        var rng = TestRNG(seed: 21)
        let (b, n, heads, d) = (1, 96, 2, 40)
        let inputs = (0..<2).map { _ in (rng.tensor([b, n, heads * d]), rng.tensor([b, n, heads * d]), rng.tensor([b, n, heads * d])) }
        let wanted = inputs.map { q, k, v in
            let out = Tensor(zeros: [b, n, heads * d])
            attention(query: q, key: k, value: v, heads: heads, output: out, pool: pool)
            return out.toArray()
        }
        let outputs = (0..<2).map { _ in Tensor(zeros: [b, n, heads * d]) }
        let mismatches = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        mismatches.initialize(repeating: 0, count: 2)
        defer { mismatches.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 2) { t in
            let (q, k, v) = inputs[t]
            for _ in 0..<200 {
                attention(query: q, key: k, value: v, heads: heads, output: outputs[t], pool: pool)
                if outputs[t].toArray() != wanted[t] { mismatches[t] += 1 }
            }
        }
        XCTAssertEqual([mismatches[0], mismatches[1]], [0, 0], "runs whose output differed from the same call alone")
    }

    func testFusedQKVStrides() {
        // Head dim 64 under the causal mask: CLIP's layout, on the short causal path with AVX-512.
        for (d, causal) in [(5, false), (40, false), (64, true)] { checkFusedQKVStrides(headDim: d, causal: causal) }
    }

    func checkFusedQKVStrides(headDim d: Int, causal: Bool) {
        // Q, K, V as column slices of one [B, N, 3·inner] projection.
        var rng = TestRNG(seed: 15)
        let (b, n, heads) = (2, 21, 2)
        let inner = heads * d
        let qkv = rng.tensor([b, n, 3 * inner])
        let out = Tensor(zeros: [b, n, inner])
        let p = UnsafePointer(qkv.data)
        attention(query: AttentionOperand(p, rowStride: 3 * inner), key: AttentionOperand(p + inner, rowStride: 3 * inner),
                  value: AttentionOperand(p + 2 * inner, rowStride: 3 * inner), output: out.data, outputRowStride: inner,
                  batch: b, heads: heads, queryLength: n, keyLength: n, headDim: d, causal: causal,
                  scale: 1 / Float(d).squareRoot(), pool: testPools[1])
        let a = qkv.toArray()
        var q = [Float](), k = [Float](), v = [Float]()
        for r in 0..<(b * n) {
            let base: Int = r * 3 * inner
            q += a[base..<(base + inner)]
            k += a[(base + inner)..<(base + 2 * inner)]
            v += a[(base + 2 * inner)..<(base + 3 * inner)]
        }
        assertClose(out.toArray(), naiveAttention(q, k, v, b: b, nq: n, nk: n, heads: heads, d: d, causal: causal),
                    atol: 2e-5, "fused qkv, head dim \(d), causal \(causal)")
    }
}
