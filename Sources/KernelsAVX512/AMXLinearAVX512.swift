// The product of a packed linear layer on Intel AMX tiles (Sapphire Rapids and later) at fp32
// accuracy: X and the weights are split into three bf16 parts each and six bf16 tile products
// summed in fp32 (CAVX512's `diffusiond_amx_x6` has the split and the error bound). Alone, the
// tiles do these six products twice as fast as the AVX-512 FMAs do one fp32 product; since the
// weights are split on every call (kept split they would take half as much memory again), the
// tiles pay only where many rows share each weight, the depth is shallow enough for a 32-row
// block's parts and a panel's to stay in L2, and a deeper product has outputs enough: `takes`
// (measured in docs/BENCHMARKS.md, 2026-12-06 (AMX) and (AMX in tile order)).
//
// Kernels' PackedLinear.swift splits X once per call into the shared scratch (`split`) and
// hands row blocks × panel chunks to the cores (`multiply`). Layout of the split X, in the
// tiles' order: part p's row tile T (32 rows), k-step s (32 inputs) is one 2 KiB block of 32
// rows × 64 bytes at byte p·paddedRows·2·paddedDepth + (T·paddedDepth/32 + s)·2048, so a tile
// reads 1 KiB in a row and a row block's parts are contiguous. Depth past the real one is
// zero (it meets the weights' zero padding, and stale scratch there could be NaN); rows past
// the real ones are zero too, though they feed only sums that are never stored.

#if arch(x86_64)
import CAVX512
import CPrefetch

/// Linear layers on AMX tiles, fp32 in and out; see the file's header.
public enum AMXPackedLinear {
    /// Rows of one tile block (two tiles of 16).
    public static let rowTile = 32
    /// Fewest rows worth the weights' split: below, each weight serves too few rows for the
    /// tiles' speed to repay splitting it as it streams from memory (CLIP's 154 rows ran the
    /// text encoder 5–10% slower on the tiles, its 77 rows 35%; 256 rows left the UNet level).
    public static let minRows = 512
    /// Deepest product taken: one panel's split block (≤ 480 KiB) and a 32-row tile's split
    /// rows (≤ 240 KiB) stay in L2 while the tiles work through them. Deeper ones (2560 and
    /// 5120 inputs) ran slower on the tiles than on the AVX-512 kernel (docs/BENCHMARKS.md,
    /// 2026-12-06 (AMX in tile order)).
    public static let maxDepth = 1280
    /// Deepest product taken whatever its outputs.
    public static let shallowDepth = 640
    /// Fewest outputs of a product deeper than `shallowDepth` taken: SD's 1280 → 320 (the
    /// 320-channel level's feed-forward out) ran the UNet slower on the tiles, its 1280 → 1280 …
    /// 10240 (the 1280-channel level's projections and feed-forward in) faster.
    public static let minDeepOutputs = 1280
    /// Most rows one work item takes; each weight panel is split once per this many rows.
    public static let mostRows = 512
    /// Most panels one work item takes.
    public static let mostPanels = 8

    /// Whether Linux lets this process use the tile registers (asked once).
    public static let permitted: Bool = diffusiond_amx_request() != 0

    /// Whether a product of `rows` rows, `depth` inputs and `outputs` outputs runs on the tiles.
    public static func takes(rows: Int, depth: Int, outputs: Int) -> Bool {
        rows >= minRows && depth > 0 && (depth <= shallowDepth || (depth <= maxDepth && outputs >= minDeepOutputs))
    }

    /// Bytes of one 32-deep step of a row tile in the split X: 32 rows × 32 bf16.
    static let stepBytes = rowTile * 64
    /// Bytes of one part's row tile in the split X (32 rows × `paddedDepth` bf16).
    static func tileBlockBytes(_ depth: Int) -> Int { 64 * paddedDepth(depth) }

    /// `depth` rounded up to whole 32-deep tile steps.
    public static func paddedDepth(_ depth: Int) -> Int { (depth + 31) / 32 * 32 }

    /// `rows` rounded up to whole row tiles.
    public static func paddedRows(_ rows: Int) -> Int { (rows + rowTile - 1) / rowTile * rowTile }

    /// Bytes the split of `paddedRows` × `depth` takes.
    public static func splitBytes(paddedRows: Int, depth: Int) -> Int { 6 * paddedRows * paddedDepth(depth) }

    /// Per-worker scratch (floats) of `multiply` at `depth`: one panel's split block, then two
    /// 32 × 32 blocks of sums.
    public static func scratchFloats(depth: Int) -> Int { paddedDepth(depth) * 96 + 2 * rowTile * rowTile }

    /// Splits row tile `tile` of X (rows 32·tile… of `rows`, row stride `ldx`, `depth` floats
    /// each) into `parts` (see the file's header), zero past `rows` and `depth`.
    public static func split(_ x: UnsafePointer<Float>, ldx: Int, rows: Int, depth: Int, tile: Int,
                             paddedRows: Int, into parts: UnsafeMutableRawPointer) {
        let kp = paddedDepth(depth), partBytes = paddedRows * 2 * kp, block = tileBlockBytes(depth)
        for r in (tile * rowTile)..<((tile + 1) * rowTile) {
            let o = parts + tile * block + (r - tile * rowTile) * 64
            if r >= rows {
                for p in 0..<3 {
                    for s in 0..<(kp / 32) {
                        (o + p * partBytes + s * stepBytes).initializeMemory(as: UInt8.self, repeating: 0, count: 64)
                    }
                }
            } else {
                diffusiond_bf16x3_split_row(x + r * ldx, Int32(depth), Int32(kp), stepBytes / 2,
                                            o.assumingMemoryBound(to: UInt16.self),
                                            (o + partBytes).assumingMemoryBound(to: UInt16.self),
                                            (o + 2 * partBytes).assumingMemoryBound(to: UInt16.self))
            }
        }
    }

    /// Y[rows][panels] (+)= X[rows]·Wᵀ (+ bias) on the calling thread, X given as `split` left
    /// it (`parts`, `paddedRows` rows; `rows` starts on a row tile), `packed` the whole weight
    /// in panels of [`depth`][64] floats (Kernels' `PackedLinear`; `depth` ≤ `maxDepth`), Y
    /// row-major with row stride `ldy` (row 0 is the split's row 0), `bias` nil or the whole
    /// layer's. `accumulate` adds the sums to what Y holds (a residual); `quickGelu` stores
    /// x·σ(1.702x) of the finished sums (`AVX512PackedLinear`'s operations). `scratch` holds
    /// `scratchFloats(depth:)`. Tiles are configured here and released before returning.
    public static func multiply(parts: UnsafeRawPointer, paddedRows: Int, rows: Range<Int>, depth: Int,
                                packed: UnsafePointer<Float>, panels: Range<Int>, bias: UnsafePointer<Float>?,
                                y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool, quickGelu: Bool,
                                scratch: UnsafeMutablePointer<Float>) {
        if rows.isEmpty || panels.isEmpty { return }
        precondition(rows.lowerBound % rowTile == 0 && rows.upperBound <= paddedRows && depth > 0 && depth <= maxDepth,
                     "AMXPackedLinear.multiply: rows \(rows), depth \(depth)")
        let kp = paddedDepth(depth), aPart = paddedRows * 2 * kp, block = tileBlockBytes(depth)
        let bGroup = kp * 32, bPart = 4 * bGroup
        let tiles = (rows.count + rowTile - 1) / rowTile
        let b = UnsafeMutableRawPointer(scratch)
        let sums = scratch + kp * 96
        // Two blocks of sums in turn: each block's epilogue runs after the next block's products
        // are issued, so its loads and stores overlap the tiles' work instead of waiting for it.
        var turn = 0
        var pending: (sums: UnsafeMutablePointer<Float>, row: Int, col: Int)? = nil
        func finishPending() {
            guard let (c, r0, col) = pending else { return }
            finish(c, rows: min(rowTile, rows.upperBound - r0), y: y + r0 * ldy + col, ldy: ldy,
                   bias: bias.map { $0 + col }, accumulate: accumulate, quickGelu: quickGelu)
            pending = nil
        }
        diffusiond_amx_configure()
        for p in panels {
            finishPending()
            diffusiond_bf16x3_pack_panel(packed + p * depth * 64, Int32(depth), Int32(kp), b)
            // The next panel, prefetched into L2 over this one's products, so its split reads
            // from cache.
            let ahead = UnsafeRawPointer(packed + (p + 1) * depth * 64)
            let lines = p + 1 < panels.upperBound ? depth * 4 : 0
            let perCall = (lines + 2 * tiles - 1) / (2 * tiles)
            var line = 0
            for t in 0..<tiles {
                let a = parts + (rows.lowerBound / rowTile + t) * block
                for h in 0..<2 {
                    let end = min(lines, line + perCall)
                    while line < end { diffusiond_prefetch_l2(ahead + 64 * line); line += 1 }
                    let c = sums + rowTile * rowTile * turn
                    turn ^= 1
                    diffusiond_amx_x6(a, 64, stepBytes, aPart, b + 2 * h * bGroup, bGroup, bPart, Int32(kp / 32), c, 4 * rowTile)
                    finishPending()
                    pending = (c, rows.lowerBound + rowTile * t, p * 64 + 32 * h)
                }
            }
        }
        finishPending()
        diffusiond_amx_release()
    }

    /// y[r][0..<32] = sums[r][…] (+ y, the residual) (+ bias), then x·σ(1.702x) when
    /// `quickGelu`, for `rows` rows of the 32 × 32 block `sums`.
    @inline(__always)
    static func finish(_ sums: UnsafeMutablePointer<Float>, rows: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
                       bias: UnsafePointer<Float>?, accumulate: Bool, quickGelu: Bool) {
        for r in 0..<rows {
            let s = sums + r * rowTile, out = y + r * ldy
            for q in stride(from: 0, to: rowTile, by: 16) {
                var v = load16(s + q)
                if accumulate { v += load16(out + q) }
                if let bias { v += load16(bias + q) }
                if quickGelu { v = quickGelu16(v) }
                store16(v, out + q)
            }
        }
    }
}
#endif
