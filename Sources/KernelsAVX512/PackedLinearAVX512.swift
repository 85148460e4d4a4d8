// The AVX-512 product of a linear layer whose weights were packed once, at load, into panels
// of 64 outputs (Kernels' PackedLinear.swift has the layout, the packing and the split over
// the cores; without AVX-512 nothing is packed, and a packed weight met with the AVX-512
// kernels switched off is unpacked block by block for sgemm).
//
// Why: OpenBLAS's sgemm packs the weight operand on every call, and at the UNet's low levels
// (16–256 token rows against up to 52 MB of weights) and in the text encoder (77–154 rows)
// that pass and the weights' trip from memory are a large part of the product. With the
// weights already in the layout the 6×64 register tile reads (each panel's [in][64] floats
// contiguous, the panels one after another), a product streams every weight once, front to
// back, prefetching the next block into L2 while it multiplies one. Measured in
// docs/BENCHMARKS.md (2026-12-06).

#if arch(x86_64)
import CAVX512
import CPrefetch

/// y ← y·σ(1.702y) = y / (1 + e^(−1.702y)) (CLIP's quick_gelu) on `rows` rows of 64 floats
/// (row stride `ldy`): Kernels' `Activation.quickGelu` at 16 lanes, the same operations
/// (`exp16` gives `vexp`'s bits), so the fused product gives the bits of a separate pass.
private func quickGelu64(_ y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int) {
    for r in 0..<rows {
        var p = y + r * ldy
        for _ in 0..<4 {
            store16(quickGelu16(load16(p)), p)
            p += 16
        }
    }
}

/// x·σ(1.702x) = x / (1 + e^(−1.702x)) of 16 lanes, with `Activation.quickGelu`'s bits.
@inline(__always)
func quickGelu16(_ x: V16) -> V16 {
    x / (V16(repeating: 1) + exp16(x * V16(repeating: -1.702)))
}

/// Y (+)= X·Wᵀ with W packed in 64-wide column panels, for CPUs with AVX-512 (F, CD, BW, DQ, VL).
public enum AVX512PackedLinear {
    /// Output features per panel (four zmm).
    public static let panelWidth = 64
    /// Longest depth of one pass: the depth is cut into equal blocks of at most this many, so a
    /// panel's block (≤ 384 × 64 floats, 96 KiB) stays in L2 while every six-row group of X
    /// passes it, and the six rows' block (≤ 9 KiB) in L1. Measured on SD 1.5's shapes
    /// (`diffusion-bench kernels --only linear`, Sapphire Rapids, 2026-12-06): blocks of 64 to
    /// 384 were within 5% of each other at 16–256 rows; whole depths of 320 were best at 8192.
    public static let maxDepthBlock = 384
    /// Rows of X one pass takes: `rows` cut into equal blocks (multiples of six) of at most
    /// 1.5 MiB of X, which stay in L2 while the panels stream past, so each panel is read
    /// from memory once per block.
    public static func rowBlock(rows: Int, depth: Int) -> Int {
        let most = max(6, (3 << 17) / max(depth, 1) / 6 * 6)
        let blocks = max(1, (rows + most - 1) / most)
        return ((rows + blocks - 1) / blocks + 5) / 6 * 6
    }

    /// Y[rows][panels] (+)= X[rows]·Wᵀ (+ bias) on the calling thread: X is row-major with row
    /// stride `ldx` (`depth` floats used per row), `packed` the whole weight in panels of
    /// [`depth`][64] floats, Y row-major with row stride `ldy` (column `64·p` for panel `p`),
    /// `bias` nil or the whole layer's. `accumulate` keeps what Y holds (a residual). The bias
    /// is added to the accumulators as the tile is stored, so Y is written once, not filled
    /// with it first; `quickGelu` (not with `accumulate`) stores x·σ(1.702x) of the finished sums.
    public static func multiply(x: UnsafePointer<Float>, ldx: Int, rows: Range<Int>, depth: Int,
                                packed: UnsafePointer<Float>, panels: Range<Int>, bias: UnsafePointer<Float>?,
                                y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool, quickGelu: Bool = false) {
        if rows.isEmpty || panels.isEmpty { return }
        // A packed weight always has inputs (`PackedLinear.canPack`).
        precondition(depth > 0, "AVX512PackedLinear.multiply: depth \(depth)")
        let w = panelWidth
        let blocks = (depth + maxDepthBlock - 1) / maxDepthBlock
        let depthBlock = (depth + blocks - 1) / blocks
        let groups = (rows.count + 5) / 6  // row tiles: `rowGroup` cuts 7 and 8 into two, as 6 + 1 and 6 + 2 would be
        // The weights come from memory once per call (a UNet's 3 GB do not stay in any cache),
        // so while one block is multiplied the next one (it follows in memory: the next depth
        // block, or the next panel's first) is prefetched into L2, its lines spread over the
        // block's row groups so the requests keep pace with the arithmetic.
        let end = packed + panels.upperBound * depth * w
        for p in panels {
            var k0 = 0
            while k0 < depth {
                let kb = min(depthBlock, depth - k0)
                let add = accumulate || k0 > 0
                let panelBias = k0 == 0 ? bias.map { $0 + p * w } : nil
                // On the finished sums only, while the tile just stored is in L1 (kept out of the
                // register tile itself: its exponentials there made every shape's code slower).
                let activate = quickGelu && k0 + kb == depth
                let b = packed + p * depth * w + k0 * w
                let next = b + kb * w
                let nextLines = next < end ? (min(depthBlock, (end - next) / w) * w) / 16 : 0
                let perGroup = (nextLines + groups - 1) / groups
                var r = rows.lowerBound, g = 0
                while r < rows.upperBound {
                    let first = g * perGroup, count = max(0, min(perGroup, nextLines - first))
                    let ahead = UnsafeRawPointer(next) + first * 64
                    let m = rowGroup(left: rows.upperBound - r)
                    if m == 6 {
                        diffusiond_tile6x64_packed(x + r * ldx + k0, ldx, b, kb, y + r * ldy + p * w, ldy, add ? 1 : 0,
                                                   panelBias, ahead.assumingMemoryBound(to: CChar.self), count)
                    } else {
                        diffusiond_tile_rows_x64_packed(Int32(m), x + r * ldx + k0, ldx, b, kb, y + r * ldy + p * w, ldy,
                                                        add ? 1 : 0, panelBias, ahead.assumingMemoryBound(to: CChar.self),
                                                        count)
                    }
                    if activate { quickGelu64(y + r * ldy + p * w, ldy: ldy, rows: m) }
                    r += m
                    g += 1
                }
                k0 += kb
            }
        }
    }
}
#endif
