import Foundation
import Kernels

/// `diffusion-bench kernels`: achieved GFLOP/s of each heavy kernel on the shapes the
/// SD 1.5 UNet and VAE use at 512×512 (batch 2 for the UNet), one JSON line per kernel.
/// FLOPs count multiply-adds as 2; memory-bound kernels report GB/s of input+output instead.
func runKernelBenchmark(_ args: [String]) throws -> Int32 {
    let options = try Options(args, flags: ["json"])
    let bad = options.unknown(allowed: ["json", "repeat", "only"])
    if !bad.isEmpty { throw BenchError.usage("kernels: unknown option(s) \(bad.joined(separator: ", "))") }
    let repeats = try options.int("repeat", default: 3)
    let only = options.string("only", default: "")
    let pool = ThreadPool.shared
    var seed: UInt64 = 1
    func random(_ shape: [Int]) -> Tensor {
        let t = Tensor(zeros: shape)
        seed &+= 0x1234_5678_9ABC
        fillRandom(t, seed: seed, pool: .shared)
        return t
    }
    var lastCPU = 0.0
    /// Best wall time over `repeats` runs after one warm-up; `lastCPU` gets the CPU
    /// seconds of that same run.
    func time(_ body: () -> Void) -> Double {
        body()
        var best = Double.infinity
        for _ in 0..<repeats {
            let c0 = processCPUSeconds(), t0 = now()
            body()
            let t = now() - t0
            if t < best { best = t; lastCPU = processCPUSeconds() - c0 }
        }
        return best
    }
    func report(_ name: String, seconds: Double, flops: Double? = nil, bytes: Double? = nil) {
        var j = JSONLine()
        j.add("kernel", name)
        j.add("ms", seconds * 1e3)
        j.add("cpu_ms", lastCPU * 1e3)
        if let flops {
            j.add("gflops", flops / seconds / 1e9)
            // Per busy core: flops over CPU time; ×threads is the rate on an idle machine.
            j.add("gflops_per_cpu_s", flops / max(lastCPU, 1e-9) / 1e9)
        }
        if let bytes { j.add("gbytes_per_s", bytes / seconds / 1e9) }
        j.add("threads", pool.threadCount)
        printLine(j.text)
    }
    func wanted(_ name: String) -> Bool { only.isEmpty || name.hasPrefix(only) || only.hasPrefix(name) }
    /// Within a group, `--only "attention b2 4096"` picks single shapes; `name` is the kernel's
    /// whole name as `report` prints it, so a name copied from the output (arrow and all)
    /// picks that one kernel.
    func wantedShape(_ name: String) -> Bool { only.isEmpty || name.hasPrefix(only) || only.count <= 10 }

    if wanted("fma peak") {
        // Every thread runs independent FMA chains and nothing else: the machine's ceiling for
        // the products below (their GFLOP/s over this one is the share of peak they reach).
        // Each thread's chains end in `sinks`, so no loop is optimized away.
        let steps = 20_000_000
        var sinks = [Float](repeating: 0, count: pool.threadCount)
        let t = sinks.withUnsafeMutableBufferPointer { buf -> Double in
            guard let base = buf.baseAddress else { return 0 }
            return time {
                pool.parallelFor(0..<pool.threadCount) { r, w in
                    for _ in r { base[w] += fmaPeak(steps: steps).sink }
                }
            }
        }
        report("fma peak", seconds: t, flops: fmaPeak(steps: 1).flops * Double(steps * pool.threadCount))
    }
    if wanted("sgemm") {
        for (m, n, k) in [(4096, 320, 320), (8192, 1280, 320), (2048, 2048, 2048)] {
            let a = random([m, k]), b = random([n, k]), c = Tensor(zeros: [m, n])
            let t = time {
                GEMM.parallelGemm(transB: true, m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: k,
                                  c: c.data, ldc: n, pool: pool)
            }
            report("sgemm \(m)x\(n)x\(k)", seconds: t, flops: 2 * Double(m * n * k))
        }
    }
    if wanted("conv") {
        // (batch, C, H, W, O, k, stride): UNet at 64×64 latents, batch 2 and batch 1 (no
        // guidance: Turbo, LCM); VAE decoder at 512; TAESD's 64-channel convolutions at 512;
        // the UNet's and the VAE decoder's conv_out (4 and 3 outputs).
        let shapes: [(Int, Int, Int, Int, Int, Int, Int)] = [
            (2, 320, 64, 64, 320, 3, 1), (2, 640, 32, 32, 640, 3, 1), (2, 1280, 16, 16, 1280, 3, 1),
            (2, 1280, 8, 8, 1280, 3, 1), (2, 320, 64, 64, 320, 3, 2), (2, 960, 64, 64, 320, 1, 1),
            (2, 4, 64, 64, 320, 3, 1), (1, 512, 128, 128, 512, 3, 1), (1, 256, 256, 256, 256, 3, 1),
            (1, 128, 512, 512, 128, 3, 1),
            (1, 320, 64, 64, 320, 3, 1), (1, 320, 32, 32, 320, 3, 1), (1, 640, 32, 32, 640, 3, 1),
            (1, 1280, 16, 16, 1280, 3, 1), (1, 64, 512, 512, 64, 3, 1), (1, 64, 128, 128, 64, 3, 1),
            (1, 128, 64, 64, 128, 3, 1), (1, 640, 16, 16, 640, 3, 1), (1, 1280, 16, 16, 640, 3, 1), (1, 960, 32, 32, 320, 3, 1),
            (2, 320, 64, 64, 4, 3, 1), (1, 128, 512, 512, 3, 3, 1),
        ]
        for (b, c, h, w, o, k, s) in shapes {
            let name = "conv \(b)x\(c)x\(h)x\(w) -> \(o) k\(k) s\(s)"
            if !wantedShape(name) { continue }
            let x = random([b, c, h, w]), wt = random([o, c, k, k]), bias = random([o])
            let shape = Conv2DShape(batch: b, inChannels: c, height: h, width: w, outChannels: o, kernelH: k, kernelW: k,
                                    stride: s, padding: .symmetric(k / 2))
            let y = Tensor(zeros: [b, o, shape.outHeight, shape.outWidth])
            let t = time { conv2d(x, weight: wt, bias: bias, stride: s, padding: .symmetric(k / 2), output: y, pool: pool) }
            report(name, seconds: t, flops: shape.flops)
        }
    }
    if wanted("cold conv") {
        // The UNet's 4×4 and 8×8 levels at 256², batch 1 and 2, as a whole evaluation meets
        // them: each call the next of eight layers' weights (59 MB each at 1280 inputs, 118 MB
        // at 2560: the up blocks' first convolutions, on the skip connection's concatenation;
        // more than L3 holds), so they stream from memory; GB/s counts the weights.
        let o = 1280
        func name(_ b: Int, _ c: Int, _ h: Int) -> String { "cold conv \(b)x\(c)x\(h)x\(h) -> \(o) k3 s1" }
        let shapes = [(1, 1280, 4), (2, 1280, 4), (1, 1280, 8), (2, 1280, 8), (1, 2560, 4), (1, 2560, 8)]
            .filter { wantedShape(name($0.0, $0.1, $0.2)) }
        var weights: [Int: [Tensor]] = [:]
        for c in Set(shapes.map { $0.1 }) { weights[c] = (0..<8).map { _ in random([o, c, 3, 3]) } }
        let bias = random([o])
        var next = 0  // across the shapes too, so no call meets weights it left in L3
        for (b, c, h) in shapes {
            guard let layers = weights[c] else { continue }
            let x = random([b, c, h, h])
            let shape = Conv2DShape(batch: b, inChannels: c, height: h, width: h, outChannels: o, kernelH: 3, kernelW: 3,
                                    stride: 1, padding: .symmetric(1))
            let y = Tensor(zeros: [b, o, h, h])
            let t = time {
                conv2d(x, weight: layers[next % 8], bias: bias, stride: 1, padding: .symmetric(1), output: y, pool: pool)
                next += 1
            }
            report(name(b, c, h), seconds: t, flops: shape.flops,
                   bytes: Double(o * c * 9 * 4))
        }
    }
    if wanted("attention") {
        // (batch, Nq, Nk, heads, headDim): SD 1.5 self/cross attention at each UNet level; VAE mid;
        // CLIP; SD 2.x / SD-Turbo self-attention at 64×64 latents, batch 1 (head dim 64); SD 1.5's
        // largest attention at 256² (32×32 latents).
        let shapes: [(Int, Int, Int, Int, Int)] = [
            (2, 4096, 4096, 8, 40), (2, 4096, 77, 8, 40), (2, 1024, 1024, 8, 80), (2, 256, 256, 8, 160),
            (1, 4096, 4096, 1, 512), (2, 77, 77, 12, 64), (1, 4096, 4096, 5, 64), (2, 1024, 1024, 8, 40),
        ]
        for (b, nq, nk, heads, d) in shapes {
            let name = "attention b\(b) \(nq)x\(nk) h\(heads) d\(d)"
            if !wantedShape(name) { continue }
            let q = random([b, nq, heads * d]), k = random([b, nk, heads * d]), v = random([b, nk, heads * d])
            let o = Tensor(zeros: [b, nq, heads * d])
            let t = time { attention(query: q, key: k, value: v, heads: heads, causal: nq == 77 && nk == 77, output: o, pool: pool) }
            report(name, seconds: t,
                   flops: attentionFlops(batch: b, heads: heads, queryLength: nq, keyLength: nk, headDim: d))
        }
    }
    if wanted("dispatch") {
        // One parallelFor over as many items as threads, each item a few hundred nanoseconds:
        // what handing work to the pool and waiting for it costs, per call.
        let calls = 20_000
        var sink = [Float](repeating: 0, count: 64 * pool.threadCount)
        let t = sink.withUnsafeMutableBufferPointer { buf -> Double in
            guard let base = buf.baseAddress else { return 0 }
            return time {
                for _ in 0..<calls {
                    pool.parallelFor(0..<pool.threadCount) { r, _ in
                        for i in r { for j in 0..<64 { base[i * 64 + j] += 1 } }
                    }
                }
            }
        }
        report("dispatch x\(calls)", seconds: t / Double(calls))
    }
    if only == "pool" {
        var counts = [Int](repeating: 0, count: pool.threadCount)
        counts.withUnsafeMutableBufferPointer { cp in
            let c = cp.baseAddress!
            for _ in 0..<20 {
                pool.parallelFor(0..<64) { r, w in
                    for _ in r { let t0 = now(); while now() - t0 < 0.0005 {}; c[w] += 1 }
                }
            }
        }
        printLine("chunks per worker: \(counts)")
        return 0
    }
    if only == "attnparts" {
        // The two GEMMs of one attention step on SD 64×64 shapes (d = 40), repeated as the
        // tiled kernel issues them: 32 query tiles × 8 key blocks × 16 (batch·heads).
        let q = random([4096, 320]), k = random([4096, 320]), v = random([4096, 320]), s = random([128, 512])
        let o = Tensor(zeros: [4096, 320])
        let calls = 32 * 8 * 16
        let tqk = time {
            pool.parallelFor(0..<calls) { r, w in
                let sc = pool.scratch(worker: w, count: 128 * 512)
                for c in r {
                    GEMM.gemm(transB: true, m: 128, n: 512, k: 40, a: q.data + (c % 32) * 128 * 320, lda: 320,
                              b: k.data + (c % 8) * 512 * 320, ldb: 320, c: sc, ldc: 512)
                }
            }
        }
        report("QK^T 128x512x40 x\(calls)", seconds: tqk, flops: Double(calls) * 2 * 128 * 512 * 40)
        let tpv = time {
            pool.parallelFor(0..<calls) { r, _ in
                for c in r {
                    GEMM.gemm(m: 128, n: 40, k: 512, a: s.data, lda: 512, b: v.data + (c % 8) * 512 * 320, ldb: 320,
                              beta: 1, c: o.data + (c % 32) * 128 * 320, ldc: 320)
                }
            }
        }
        report("PV 128x40x512 x\(calls)", seconds: tpv, flops: Double(calls) * 2 * 128 * 512 * 40)
        let sm = time {
            pool.parallelFor(0..<calls) { r, w in
                let sc = pool.scratch(worker: w, count: 128 * 512)
                for _ in r { for row in 0..<128 { softmaxRow(sc + row * 512, sc + row * 512, 512) } }
            }
        }
        report("softmax 128x512 x\(calls)", seconds: sm)
        return 0
    }
    if wanted("linear") {
        // The last five are few-row products (SD 1.5 at 256², batch 1: the 8×8 level's GEGLU and
        // FF out, the time embedding; the text encoder's MLP at batch 2; cross-attention keys).
        for (rows, inF, outF) in [(8192, 320, 2560), (8192, 1280, 320), (8192, 320, 320), (154, 768, 3072),
                                  (154, 3072, 768), (64, 1280, 10240), (64, 5120, 1280), (1, 1280, 1280),
                                  (77, 768, 2560), (1024, 320, 2560), (256, 640, 5120), (16, 1280, 10240)] {
            let x = random([rows, inF]), w = random([outF, inF]), bias = random([outF]), y = Tensor(zeros: [rows, outF])
            let t = time { linear(x, weight: w, bias: bias, output: y, pool: pool) }
            report("linear \(rows)x\(inF) -> \(outF)", seconds: t, flops: 2 * Double(rows * inF * outF))
            // The same layer with its weight packed at load (what the UNet and text encoder use),
            // where it packs (AVX-512 CPUs, whole 64-output panels).
            if let packed = WeightTensor(w).packedForLinear() {
                let tp = time { linear(x, weight: packed, bias: bias, output: y, pool: pool) }
                report("linear packed \(rows)x\(inF) -> \(outF)", seconds: tp, flops: 2 * Double(rows * inF * outF))
            }
        }
    }
    if wanted("cold linear") {
        // The text encoder's layers as a whole evaluation meets them: each call the next of 40
        // packed weights (7.1 or 9.4 MB each, 283 or 377 MB in all, more than L3 holds), so they
        // stream from memory, against the warm figures of "linear packed" above. 154 rows: batch
        // 2 with the operators split over the cores; 77: one sequence, as each core takes its own
        // at batch 2 (`CLIPTextEncoder.sequencesPerCore`, with DIFFUSION_THREADS=1 for one core's
        // share). GB/s counts the weights.
        let shapes = [(154, 768, 3072), (154, 3072, 768), (77, 768, 3072), (77, 3072, 768), (77, 768, 2304)]
        for (rows, inF, outF) in shapes {
            if !wantedShape("cold linear \(rows)x\(inF) -> \(outF)") { continue }
            let packed = (0..<40).compactMap { _ in WeightTensor(random([outF, inF])).packedForLinear() }
            if packed.isEmpty { break }  // no packing without AVX-512
            let x = random([rows, inF]), bias = random([outF]), y = Tensor(zeros: [rows, outF])
            var next = 0
            let t = time {
                linear(x, weight: packed[next % packed.count], bias: bias, output: y, pool: pool)
                next += 1
            }
            report("cold linear \(rows)x\(inF) -> \(outF)", seconds: t, flops: 2 * Double(rows * inF * outF),
                   bytes: Double(inF * outF * 4))
        }
    }
    if wanted("norm") || wanted("elementwise") {
        let x = random([2, 320, 64, 64]), y = Tensor(zeros: [2, 320, 64, 64])
        let g = random([320]), bb = random([320])
        let bytes = Double(x.count * 8)
        report("groupnorm+silu 2x320x64x64", seconds: time {
            groupNorm(x, groups: 32, gamma: g, beta: bb, eps: 1e-5, silu: true, output: y, pool: pool)
        }, bytes: bytes)
        let rows = x.reshaped([8192, 320])
        report("layernorm 8192x320", seconds: time {
            layerNorm(rows, gamma: g, beta: bb, eps: 1e-5, output: y.reshaped([8192, 320]), pool: pool)
        }, bytes: bytes)
        let wide = random([8192, 2560]), half = Tensor(zeros: [8192, 1280])
        report("geglu 8192x2560", seconds: time { geglu(wide, output: half, pool: pool) }, bytes: Double((wide.count + half.count) * 4))
        report("silu 2x320x64x64", seconds: time { activate(.silu, x, output: y, pool: pool) }, bytes: bytes)
        report("add 2x320x64x64", seconds: time { add(x, y, output: y, pool: pool) }, bytes: Double(x.count * 12))
        let up = Tensor(zeros: [2, 320, 128, 128])
        report("upsample2x 2x320x64x64", seconds: time { upsampleNearest2x(x, output: up, pool: pool) }, bytes: Double(x.count * 20))
    }
    return 0
}
