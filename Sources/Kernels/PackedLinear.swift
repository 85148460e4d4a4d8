import KernelsAVX512

/// Linear-layer weights packed once into the layout the AVX-512 register tile reads, and the
/// product over them (`AVX512PackedLinear`).
///
/// Layout: a weight W [outFeatures, inFeatures] (PyTorch's) with outFeatures a multiple of 64
/// becomes outFeatures / 64 panels, one after another; panel p holds Wᵀ's columns 64p..<64p+64
/// row by row, i.e. element (o, i) of W sits at `(o / 64)·in·64 + i·64 + o % 64`. A product
/// then reads every weight once, front to back, instead of OpenBLAS re-packing the whole
/// weight on every call (see docs/BENCHMARKS.md, 2026-12-06).
public enum PackedLinear {
    /// Output features per panel.
    public static let panelWidth = 64

    /// Whether a weight of this shape can be packed.
    public static func canPack(outFeatures: Int, inFeatures: Int) -> Bool {
        outFeatures > 0 && inFeatures > 0 && outFeatures % panelWidth == 0
    }

    /// Element offset of W's (o, i) in the packed layout.
    @inline(__always)
    public static func packedIndex(row o: Int, col i: Int, inFeatures: Int) -> Int {
        (o / panelWidth) * inFeatures * panelWidth + i * panelWidth + o % panelWidth
    }

    /// Packs rows `rows` of W, given row-major in `w` (its first row is W's row
    /// `rows.lowerBound`; row stride `ldw`), into the whole packed weight at `packed`. Blocks of
    /// 64 × 64 keep both sides in L1.
    public static func pack(_ w: UnsafePointer<Float>, ldw: Int, rows: Range<Int>, inFeatures k: Int,
                            into packed: UnsafeMutablePointer<Float>) {
        var o0 = rows.lowerBound
        while o0 < rows.upperBound {
            let ob = min(panelWidth - o0 % panelWidth, rows.upperBound - o0)
            var i0 = 0
            while i0 < k {
                let ib = min(64, k - i0)
                for o in o0..<(o0 + ob) {
                    let src = w + (o - rows.lowerBound) * ldw + i0
                    let dst = packed + packedIndex(row: o, col: i0, inFeatures: k)
                    for i in 0..<ib { dst[i * panelWidth] = src[i] }
                }
                i0 += ib
            }
            o0 += ob
        }
    }

    /// The inverse of `pack`: rows [row0, row0 + rows) of W into row-major `dst` (row stride
    /// `ldd`, columns [col0, col0 + cols)).
    public static func unpack(_ packed: UnsafePointer<Float>, inFeatures: Int, row0: Int, rows: Int,
                              col0: Int, cols: Int, into dst: UnsafeMutablePointer<Float>, ldd: Int) {
        for r in 0..<rows {
            let src = packed + packedIndex(row: row0 + r, col: col0, inFeatures: inFeatures)
            let out = dst + r * ldd
            for i in 0..<cols { out[i] = src[i * panelWidth] }
        }
    }

    /// Where the packed product can read `weight` as a whole [outFeatures, inFeatures] layer:
    /// the first panel of a packed operand that starts on a panel and spans whole panels,
    /// when the AVX-512 kernels run; nil otherwise (the caller then uses sgemm, which unpacks
    /// a packed operand block by block).
    public static func panels(of weight: WeightOperand, inFeatures: Int, outFeatures: Int) -> UnsafePointer<Float>? {
        guard CPUFeatures.useAVX512Kernels, case let .packed(base, offset, k) = weight, k == inFeatures,
              canPack(outFeatures: outFeatures, inFeatures: k), offset % (panelWidth * k) == 0 else { return nil }
        return base + offset
    }

    /// How `multiply` cuts `rows` into row blocks (size, count): `AVX512PackedLinear.rowBlock`'s
    /// size, made smaller where the cores, which take blocks as they come, would otherwise get
    /// uneven shares: with at least two blocks per thread but fewer than ten, a count that is
    /// not a multiple of the threads leaves one of them a block more (7 blocks on 2 threads gave
    /// one 4/7 of the work: 8192 rows by 320 inputs ran at 366 GFLOP/s, 425 after). With fewer
    /// blocks the panels are split too (`multiply`); with many, smaller blocks cost more than
    /// the imbalance (27 -> 28 blocks at 1280 inputs: 406 -> 395 GFLOP/s).
    static func rowBlockPlan(rows: Int, depth: Int, threads: Int) -> (size: Int, count: Int) {
        #if arch(x86_64)
        var size = AVX512PackedLinear.rowBlock(rows: rows, depth: depth)
        #else
        var size = max(6, rows)
        #endif
        var count = (rows + size - 1) / size
        if count >= 2 * threads && count % threads != 0 && count < 10 * threads {
            let even = (count + threads - 1) / threads * threads
            size = ((rows + even - 1) / even + 5) / 6 * 6
            count = (rows + size - 1) / size
        }
        return (size, count)
    }

    /// Y (+)= X·Wᵀ (+ bias) over the cores: X is rows × inFeatures (row stride `ldx`), `packed`
    /// the weight as `pack` left it (outFeatures × inFeatures, see `panels(of:)`), Y rows ×
    /// outFeatures (row stride `ldy`), `bias` nil or [outFeatures]. `accumulate` keeps what Y
    /// holds (a residual); `quickGelu` stores x·σ(1.702x) of each output (CLIP's MLP), the bits
    /// `Activation.quickGelu` would give in a pass of its own. Shapes `AMXPackedLinear.takes`
    /// run on the AMX tiles where `CPUFeatures.useAMX` (`multiplyOnTiles`; not when called from
    /// inside a worker, which cannot hold the shared scratch the split of X needs). Those
    /// give NaN where an input is ±∞ or of magnitude ≥ 3.39e38 (see `diffusiond_amx_x6`).
    public static func multiply(_ x: UnsafePointer<Float>, ldx: Int, rows: Int, inFeatures: Int,
                                packed: UnsafePointer<Float>, outFeatures: Int, bias: UnsafePointer<Float>?,
                                output y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool, quickGelu: Bool = false,
                                pool: ThreadPool) {
        #if arch(x86_64)
        precondition(!(quickGelu && accumulate), "PackedLinear.multiply: an activation on a residual sum")
        if rows <= 0 { return }
        if !pool.isInsideWorker && runsOnTiles(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures) {
            multiplyOnTiles(x, ldx: ldx, rows: rows, inFeatures: inFeatures, packed: packed, outFeatures: outFeatures,
                            bias: bias, output: y, ldy: ldy, accumulate: accumulate, quickGelu: quickGelu, pool: pool)
            return
        }
        let panels = outFeatures / panelWidth
        let (rowBlock, rowBlocks) = rowBlockPlan(rows: rows, depth: inFeatures, threads: pool.threadCount)
        // Work items: row blocks × panel chunks. With one row block (a short X: the text
        // encoder's 77 rows, the UNet's low levels) one run of panels per thread, each streamed
        // front to back: every item starts on a block nothing prefetched, and two a thread made
        // the text encoder at batch 1 2% slower (docs/BENCHMARKS.md, 2026-12-08). With more row
        // blocks at least two items per thread where the shape allows, which the cores balance.
        let wanted = 2 * pool.threadCount
        let chunks = rowBlocks == 1 ? min(panels, pool.threadCount)
            : rowBlocks >= wanted ? 1 : min(panels, (wanted + rowBlocks - 1) / rowBlocks)
        let panelChunk = (panels + chunks - 1) / chunks
        let chunkCount = (panels + panelChunk - 1) / panelChunk
        pool.parallelFor(0..<(rowBlocks * chunkCount)) { items, _ in
            for item in items {
                let rb = item / chunkCount, pc = item % chunkCount
                let r0 = rb * rowBlock, p0 = pc * panelChunk
                AVX512PackedLinear.multiply(x: x, ldx: ldx, rows: r0..<min(rows, r0 + rowBlock),
                                            depth: inFeatures, packed: packed,
                                            panels: p0..<min(panels, p0 + panelChunk), bias: bias,
                                            y: y, ldy: ldy, accumulate: accumulate, quickGelu: quickGelu)
            }
        }
        #else
        preconditionFailure("PackedLinear.multiply: no AVX-512 build on this architecture")
        #endif
    }

    /// Whether `multiply` runs a product of this shape on the AMX tiles here (outside a
    /// worker): the CPU has them (`CPUFeatures.useAMX`) and `AMXPackedLinear.takes` the shape.
    /// Their bits differ from the AVX-512 tile's (six bf16 products per fp32 one).
    public static func runsOnTiles(rows: Int, inFeatures: Int, outFeatures: Int) -> Bool {
        #if arch(x86_64)
        return CPUFeatures.useAMX && AMXPackedLinear.takes(rows: rows, depth: inFeatures, outputs: outFeatures)
        #else
        return false
        #endif
    }

    /// Most bytes of X's bf16 split held at once (`multiplyOnTiles` takes taller X in parts).
    static let tileSplitBudget = 32 << 20

    /// `multiply` on the AMX tiles (`AMXPackedLinear`, where it `takes` the shape): X split
    /// into bf16 parts in the shared scratch (row tiles over the cores), then row blocks ×
    /// panel chunks over the cores (two per thread where the shape has that many); X in parts
    /// of at most `splitBudget` bytes of split rows. Holds the pool's shared scratch for the
    /// call, so it must not be reached from inside another `withSharedScratch` body.
    static func multiplyOnTiles(_ x: UnsafePointer<Float>, ldx: Int, rows: Int, inFeatures: Int,
                                packed: UnsafePointer<Float>, outFeatures: Int, bias: UnsafePointer<Float>?,
                                output y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool, quickGelu: Bool,
                                pool: ThreadPool, splitBudget: Int = tileSplitBudget) {
        #if arch(x86_64)
        let tile = AMXPackedLinear.rowTile, threads = pool.threadCount
        let panels = outFeatures / panelWidth
        let most = max(tile, splitBudget / AMXPackedLinear.splitBytes(paddedRows: tile, depth: inFeatures) * tile)
        var r0 = 0
        while r0 < rows {
            let n = min(most, rows - r0), padded = AMXPackedLinear.paddedRows(n)
            // Row blocks of at most `mostRows`, about a multiple of the threads when there are
            // enough (then whole row tiles); then panel chunks of at most `mostPanels`, more until
            // every thread has two items where the panels allow.
            var blocks = (n + AMXPackedLinear.mostRows - 1) / AMXPackedLinear.mostRows
            if blocks >= threads { blocks = (blocks + threads - 1) / threads * threads }
            let blockRows = AMXPackedLinear.paddedRows((n + blocks - 1) / blocks)
            blocks = (n + blockRows - 1) / blockRows
            var chunks = max((panels + AMXPackedLinear.mostPanels - 1) / AMXPackedLinear.mostPanels,
                             min(panels, (2 * threads + blocks - 1) / blocks))
            let chunkPanels = (panels + chunks - 1) / chunks
            chunks = (panels + chunkPanels - 1) / chunkPanels
            let xs = x + r0 * ldx, ys = y + r0 * ldy
            pool.withSharedScratch(count: AMXPackedLinear.splitBytes(paddedRows: padded, depth: inFeatures) / 4) { shared in
                let parts = UnsafeMutableRawPointer(shared)
                pool.parallelFor(0..<(padded / tile)) { tiles, _ in
                    for t in tiles {
                        AMXPackedLinear.split(xs, ldx: ldx, rows: n, depth: inFeatures, tile: t, paddedRows: padded, into: parts)
                    }
                }
                pool.parallelFor(0..<(blocks * chunks)) { items, worker in
                    let scratch = pool.scratch(worker: worker, count: AMXPackedLinear.scratchFloats(depth: inFeatures))
                    for item in items {
                        let rb = item / chunks, p0 = (item % chunks) * chunkPanels
                        AMXPackedLinear.multiply(parts: parts, paddedRows: padded,
                                                 rows: (rb * blockRows)..<min(n, (rb + 1) * blockRows), depth: inFeatures,
                                                 packed: packed, panels: p0..<min(panels, p0 + chunkPanels), bias: bias,
                                                 y: ys, ldy: ldy, accumulate: accumulate, quickGelu: quickGelu,
                                                 scratch: scratch)
                    }
                }
            }
            r0 += n
        }
        #endif
    }
}
