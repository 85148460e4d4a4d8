import KernelsAVX512

/// The few-tile Winograd path's position products on AVX-512 when the tiles are 32 to 64 whole
/// vectors (`winogradUsesPanels`: SD's 8×8 level at batch 2, its 16×16 level at batch 1, the
/// 32×32 level by F(4×4) at batch 1): for one block of output channels, M[k] = U[k]·V[k] for
/// every position k, with the filters transformed six output channels and one depth block of
/// input channels at a time into a panel that stays in L2, right before the products that
/// read it.
///
/// Why: transforming the block's whole U first (P × block × C floats: 13 MB for 160 of SD's
/// 1280 channels by F(2×2)) and then running the P products over it wrote U to memory and read
/// it back, twice the bytes of the weights themselves, for layers whose weights already stream
/// from memory; so at 32 tiles F(2×2) did no better than im2col and the 8×8 level stayed on
/// im2col. Here the weights are read once, U never leaves the cache, and V is read in depth
/// blocks that stay in L2 while the block's row groups pass (docs/BENCHMARKS.md, 2026-12-07
/// (session 34): SD's 2 × 1280 × 8 × 8 layer 16% faster than by im2col).
///
/// Each output sums its channels in order, one FMA per channel, and a depth block resumes from
/// what the last one stored, so M has the bits of `AVX512StreamingGEMM.multiply` over U[k] and
/// V[k] whole (the path before this one).

/// Fewest and most tiles (whole 16-tile vectors) for the panels.
let winogradPanelTiles = 32...64

/// Fewest input channels for F(2×2) on panels below `winogradF2MinimumTiles`: measured only
/// on SD's 640- to 2560-channel 8×8 layers.
let winogradPanelMinimumChannels = 128

/// Whether `conv2dWinograd`'s few-tile path runs a layer of `tiles` tiles on panels.
func winogradUsesPanels(tiles: Int) -> Bool {
    #if arch(x86_64)
    return CPUFeatures.useAVX512Kernels && tiles % 16 == 0 && winogradPanelTiles.contains(tiles)
    #else
    return false
    #endif
}

/// Floats of V (P positions × depth block × tiles) one depth block may take: 512 KiB, a
/// quarter of the development machine's L2, beside the panel and the block's M.
let winogradPanelVBlockFloats = 1 << 17

/// Channels per depth block: V's block within `winogradPanelVBlockFloats`, a multiple of 16
/// (whole 16-lane filter transforms), at least 16.
func winogradPanelDepthBlock(positions: Int, tiles: Int, cin: Int) -> Int {
    let fit = winogradPanelVBlockFloats / max(1, positions * tiles) / 16 * 16
    return min(cin, max(16, fit))
}

/// Floats of worker scratch a block of `outputs` channels needs: M (P × outputs × tiles), then
/// the panel (P × 6 × depth block).
func winogradPanelScratch(_ kind: WinogradTile, outputs: Int, tiles: Int, cin: Int) -> Int {
    let cb = winogradPanelDepthBlock(positions: kind.positions, tiles: tiles, cin: cin)
    return kind.positions * (outputs * tiles + 6 * cb)
}

#if arch(x86_64)
/// M[k][o − first][t] = Σ_c U[k][o][c]·V[k][c][t] for the output channels `outputs`, every
/// position k and tile t < `tiles` (a multiple of 16). V is [P][cin][tiles]; M is
/// [P][outputs][tiles] at the start of `scratch`, the panel after it (`winogradPanelScratch`).
func winogradPanelProducts(_ kind: WinogradTile, weight: WeightOperand, cin: Int, outputs: Range<Int>,
                           v: UnsafePointer<Float>, tiles: Int, scratch: UnsafeMutablePointer<Float>,
                           worker: Int, pool: ThreadPool) {
    let positions = kind.positions, oc = outputs.count
    let cb = winogradPanelDepthBlock(positions: positions, tiles: tiles, cin: cin)
    let m = scratch, panel = scratch + positions * oc * tiles
    var c0 = 0
    while c0 < cin {
        let kb = min(cb, cin - c0)
        var r0 = 0
        while r0 < oc {
            let rows = min(6, oc - r0), plane = rows * kb
            // panel[k][r][c] = U[k] of output channel first + r0 + r, input channel c0 + c.
            let first = outputs.lowerBound + r0
            winogradTransformFilters(kind, weight: weight, cin: cin, channels: c0..<(c0 + kb),
                                     outputs: first..<(first + rows), into: panel, plane: plane, worker: worker, pool: pool)
            for k in 0..<positions {
                AVX512StreamingGEMM.multiply(rows: rows, cols: tiles, depth: kb, w: panel + k * plane, ldw: kb,
                                             x: v + k * cin * tiles + c0 * tiles, ldx: tiles, accumulate: c0 > 0,
                                             y: m + k * oc * tiles + r0 * tiles, ldy: tiles)
            }
            r0 += rows
        }
        c0 += kb
    }
}
#endif
