import KernelsAVX512

/// 3×3 stride-1 convolution by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray,
/// "Fast Algorithms for Convolutional Neural Networks", 2016): each 2×2 output tile is
/// Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A over a 4×4 input tile d, so the channel reduction becomes 16
/// independent GEMMs (one per tile position) with 16 multiplies per tile instead of 36:
/// 2.25× fewer FLOPs than direct convolution. The matrices:
///   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
///   G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
///   Aᵀ = [1 1 1 0; 0 1 −1 −1]
/// All coefficients are 0, ±1, ±½, so fp32 rounding stays at a few ulps of the sums.
/// Layers with many tiles use F(4×4, 3×3) instead (`WinogradF4.swift`); `conv2dWinograd`
/// below drives both.

/// The two Winograd algorithms `conv2d` uses: F(2×2, 3×3) (this file) and F(4×4, 3×3)
/// (`WinogradF4.swift`).
enum WinogradTile {
    case f2, f4
    /// Output pixels per tile side (m).
    var outputSide: Int { self == .f2 ? 2 : 4 }
    /// Transformed positions per tile, (m + 2)²: the number of channel GEMMs.
    var positions: Int { self == .f2 ? 16 : 36 }
    /// Tiles of this size covering the output of `s`.
    func tiles(_ s: Conv2DShape) -> Int {
        s.batch * ((s.outHeight + outputSide - 1) / outputSide) * ((s.outWidth + outputSide - 1) / outputSide)
    }

    /// U = G g Gᵀ for one output channel's filters (`winogradWeightTransform` or its F4 twin;
    /// on AVX-512 `AVX512WinogradFilters` takes the channels in whole groups of 16 and these
    /// the rest).
    @inline(__always)
    func transformWeights(_ src: UnsafePointer<Float>, cin: Int, into u: UnsafeMutablePointer<Float>, plane: Int) {
        var done = 0
        #if arch(x86_64)
        if CPUFeatures.useAVX512Kernels {
            switch self {
            case .f2: done = AVX512WinogradFilters.f2(src, cin: cin, into: u, plane: plane)
            case .f4: done = AVX512WinogradFilters.f4(src, cin: cin, into: u, plane: plane)
            }
            if done == cin { return }
        }
        #endif
        switch self {
        case .f2: winogradWeightTransform(src + 9 * done, cin: cin - done, into: u + done, plane: plane)
        case .f4: winogradF4WeightTransform(src + 9 * done, cin: cin - done, into: u + done, plane: plane)
        }
    }

    /// V = Bᵀ d B for a run of tiles (`winogradInputTransform` or its F4 twin).
    @inline(__always)
    func transformInput(_ input: UnsafePointer<Float>, _ s: Conv2DShape, inImage: Int, tilesW: Int,
                        tilesPerImage: Int, firstTile: Int, count: Int, channels: Range<Int>,
                        into v: UnsafeMutablePointer<Float>) {
        switch self {
        case .f2: winogradInputTransform(input, s, inImage: inImage, tilesW: tilesW, tilesPerImage: tilesPerImage,
                                         firstTile: firstTile, count: count, channels: channels, into: v)
        case .f4: winogradF4InputTransform(input, s, inImage: inImage, tilesW: tilesW, tilesPerImage: tilesPerImage,
                                           firstTile: firstTile, count: count, channels: channels, into: v)
        }
    }

    /// Y = Aᵀ m A + bias for a run of tiles (`winogradOutputTransform` or its F4 twin).
    @inline(__always)
    func transformOutput(_ m: UnsafeMutablePointer<Float>, _ s: Conv2DShape, outImage: Int, tilesW: Int,
                         tilesPerImage: Int, firstTile: Int, count: Int, channels: Range<Int>,
                         bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
        switch self {
        case .f2: winogradOutputTransform(m, s, outImage: outImage, tilesW: tilesW, tilesPerImage: tilesPerImage,
                                          firstTile: firstTile, count: count, channels: channels, bias: bias, output: output)
        case .f4: winogradF4OutputTransform(m, s, outImage: outImage, tilesW: tilesW, tilesPerImage: tilesPerImage,
                                            firstTile: firstTile, count: count, channels: channels, bias: bias, output: output)
        }
    }
}

/// Largest U (transformed weights, floats) F(4×4) may take: 36·C·O for a 640×1280 layer.
/// Wider layers (SD's 1280-channel levels, which have few tiles anyway) stay on F(2×2), so a
/// many-tile layer's shared U, and with it peak memory, is no larger than F(2×2)'s there.
let winogradF4WeightBudget = 36 * 640 * 1280

/// Fewest 2×2 tiles for F(2×2); below it im2col. Measured single-threaded (`diffusion-bench
/// kernels --only conv`): SD's 1280-channel 16×16 layer at batch 1, 64 tiles, 58–66 ms against
/// im2col's 83; at 8×8 batch 2, 32 tiles, both about 45 ms.
let winogradF2MinimumTiles = 64

/// Fewest 4×4 tiles for F(4×4). Measured single-threaded (`diffusion-bench kernels --only
/// conv`): a 640-channel 32×32 layer, 64 tiles, takes 43 ms by F(4×4) against 52 ms by F(2×2).
let winogradF4MinimumTiles = 64

/// Fewest input and output channels for F(4×4). At 64 channels (TAESD, the built-in model's
/// VAE) the transforms' memory traffic outweighs the GEMM savings: 64-channel layers at 128²
/// and 512² measured the same by either algorithm; 128 channels at 64² took 8 ms against 17.
let winogradF4MinimumChannels = 128

/// Which Winograd algorithm `conv2d` uses for this shape, or nil for im2col: 3×3, stride 1,
/// enough channels for GEMMs, and enough output tiles to amortize the per-call weight
/// transform. F(4×4) (1.78× fewer GEMM FLOPs than F(2×2), larger transforms and rounding)
/// when there are `winogradF4MinimumTiles` 4×4 tiles, channels are wide
/// enough (`winogradF4MinimumChannels`) that the GEMMs outweigh the transforms, and U fits its
/// budget. F(2×2) from `winogradF2MinimumTiles`, or from fewer where the products run on
/// panels (`winogradUsesPanels`, AVX-512) and the layer has `winogradPanelMinimumChannels`.
func winogradTile(for s: Conv2DShape) -> WinogradTile? {
    guard s.kernelH == 3, s.kernelW == 3, s.stride == 1, s.inChannels >= 16, s.outChannels >= 16 else { return nil }
    if WinogradTile.f4.tiles(s) >= winogradF4MinimumTiles,
       s.inChannels >= winogradF4MinimumChannels, s.outChannels >= winogradF4MinimumChannels,
       36 * s.inChannels * s.outChannels <= winogradF4WeightBudget {
        return .f4
    }
    let f2Tiles = WinogradTile.f2.tiles(s)
    if f2Tiles >= winogradF2MinimumTiles { return .f2 }
    return winogradUsesPanels(tiles: f2Tiles) && s.inChannels >= winogradPanelMinimumChannels ? .f2 : nil
}

/// Most floats of transformed filters U the many-tile path holds at once on AVX-512 (64 MiB,
/// or one output channel's if that is more): the few-tile path's largest V on SD's UNet at
/// 512², batch 2 (1920 channels × 512 tiles × 16), so peak memory stays where it was when
/// layers past 256 tiles moved to the many-tile path. Layers with a larger U go in parts of
/// their outputs. (On AVX2, whose few-tile path still takes up to 1024 tiles, U stays whole.)
let winogradSharedBudget = 16 << 20

/// Floats the Winograd path keeps per worker for one chunk of tiles (16 MiB).
let winogradChunkBudget = 4 << 20

/// Floats of one chunk's V and M that stay in a core's L2 (1 MiB, half the development
/// machine's 2 MiB): narrow layers (TAESD's 64 channels) are bound by the transforms' memory
/// traffic, not by the GEMMs, so their chunk is sized to stay in cache.
let winogradCacheChunkBudget = 1 << 18

/// Fewest tiles a cache-sized chunk may have; wider layers (the UNet's 320+ channels), whose
/// GEMMs dominate and want long rows, keep `winogradChunkBudget`'s larger chunks.
let winogradMinimumCacheChunk = 64

func conv2dWinograd(_ input: UnsafePointer<Float>, weight: WeightOperand, bias: UnsafePointer<Float>?,
                    shape s: Conv2DShape, tile kind: WinogradTile,
                    output: UnsafeMutablePointer<Float>, pool: ThreadPool,
                    sharedBudget: Int? = nil, panels allowPanels: Bool = true) {
    let cin = s.inChannels, cout = s.outChannels
    let ho = s.outHeight, wo = s.outWidth
    let side = kind.outputSide, positions = kind.positions
    let tilesH = (ho + side - 1) / side, tilesW = (wo + side - 1) / side
    let tilesPerImage = tilesH * tilesW
    let totalTiles = s.batch * tilesPerImage

    let inImage = cin * s.height * s.width, outImage = cout * ho * wo
    // Few tiles: every tile's V in shared memory at once, at most 16·C·1024 floats (1024 2×2
    // tiles, 455 4×4 tiles). On AVX-512 only up to the streaming product's 256 columns: past
    // them its rows met V from L3 for every block of outputs (SD's 32×32 level at batch 2, 512
    // tiles: 1920 → 640 channels 130 ms by sgemm here, 80 ms by the many-tile path).
    // Whether the position GEMMs run on AVX512StreamingGEMM, and the most tiles the few-tile
    // path then takes.
    #if arch(x86_64)
    let streaming = CPUFeatures.useAVX512Kernels
    let streamingColumns = 4 * AVX512StreamingGEMM.columnBlock
    #else
    let streaming = false
    let streamingColumns = Int.max
    #endif
    if positions * totalTiles <= 16 * 1024 && !(streaming && totalTiles > streamingColumns) {
        // Few tiles (low resolution): transform every tile once into shared memory, then split
        // the work by output channels. Each block transforms its own filters into worker
        // scratch right before its GEMMs, so U never exists whole (a 1280×2560 layer's would be
        // 210 MB by F(2×2)).
        pool.withSharedScratch(count: positions * cin * totalTiles) { v in
        pool.parallelFor(0..<cin, grain: max(1, cin / (4 * pool.threadCount))) { cs, _ in
            kind.transformInput(input, s, inImage: inImage, tilesW: tilesW, tilesPerImage: tilesPerImage,
                                firstTile: 0, count: totalTiles, channels: cs, into: v)
        }
        let vPtr = UnsafePointer(v)
        // At most 256 tiles (up to SD's 32×32 level at batch 1, 16×16 at batch 2) on AVX-512: the
        // position GEMMs run on the weight-streaming tile, U's rows broadcast against V's
        // columns, instead of sgemm packing both for one pass (docs/BENCHMARKS.md, 2026-12-06:
        // 10–20% off these layers at 64 tiles; at 128 and 256 once the streaming product's depth
        // blocks kept X in L2; at 512, 1280-channel layers were 50% slower). Blocks are then
        // whole 6-row groups.
        let streamTiles = streaming && totalTiles % 16 == 0
        let panels = allowPanels && winogradUsesPanels(tiles: totalTiles)
        let blocks = min(max(1, cout / 32), 4 * pool.threadCount)
        var oBlock = (cout + blocks - 1) / blocks
        if streamTiles { oBlock = (oBlock + 5) / 6 * 6 }
        pool.parallelFor(0..<blocks) { range, worker in
            let buf = pool.scratch(worker: worker, count: panels
                                   ? winogradPanelScratch(kind, outputs: oBlock, tiles: totalTiles, cin: cin)
                                   : positions * oBlock * (cin + totalTiles))
            for blk in range {
                let o0 = blk * oBlock, oc = min(oBlock, cout - o0)
                if oc <= 0 { continue }
                // M at the start of the scratch (panels, WinogradPanels.swift), else after U.
                var m = buf
                if panels {
                    #if arch(x86_64)
                    winogradPanelProducts(kind, weight: weight, cin: cin, outputs: o0..<(o0 + oc), v: vPtr,
                                          tiles: totalTiles, scratch: buf, worker: worker, pool: pool)
                    #endif
                } else {
                    let u = buf
                    m = buf + positions * oBlock * cin
                    winogradTransformFilters(kind, weight: weight, cin: cin, outputs: o0..<(o0 + oc), into: u,
                                             plane: oc * cin, worker: worker, pool: pool)
                    for k in 0..<positions {
                        #if arch(x86_64)
                        if streamTiles {
                            AVX512StreamingGEMM.multiply(rows: oc, cols: totalTiles, depth: cin, w: u + k * oc * cin,
                                                         ldw: cin, x: vPtr + k * cin * totalTiles, ldx: totalTiles,
                                                         accumulate: false, y: m + k * oc * totalTiles, ldy: totalTiles)
                            continue
                        }
                        #endif
                        GEMM.gemm(m: oc, n: totalTiles, k: cin, a: u + k * oc * cin, lda: cin,
                                  b: vPtr + k * cin * totalTiles, ldb: totalTiles, beta: 0, c: m + k * oc * totalTiles,
                                  ldc: totalTiles)
                    }
                }
                kind.transformOutput(m, s, outImage: outImage, tilesW: tilesW, tilesPerImage: tilesPerImage,
                                     firstTile: 0, count: totalTiles, channels: o0..<(o0 + oc), bias: bias, output: output)
            }
        }
        }
        return
    }

    // Many tiles: U[k][o][c] = (G g Gᵀ)[k] for every filter g = weight[o, c] once, shared by
    // all chunks of tiles. A layer whose U would pass the budget (`sharedBudget`, else
    // `winogradSharedBudget` on AVX-512) goes in equal parts of its output channels, each
    // transforming the input again.
    let budget = sharedBudget ?? (streaming ? winogradSharedBudget : Int.max)
    let mostOutputs = max(1, budget / (positions * cin))
    let parts = (cout + mostOutputs - 1) / mostOutputs
    let partOutputs = (cout + parts - 1) / parts
    pool.withSharedScratch(count: positions * partOutputs * cin) { u in
    for o0 in stride(from: 0, to: cout, by: partOutputs) {
        let outputs = o0..<min(cout, o0 + partOutputs), oc = outputs.count
        let plane = oc * cin
        pool.parallelFor(0..<oc, grain: max(1, 4096 / max(cin, 1))) { range, worker in
            winogradTransformFilters(kind, weight: weight, cin: cin, outputs: (o0 + range.lowerBound)..<(o0 + range.upperBound),
                                     into: u + range.lowerBound * cin, plane: plane, worker: worker, pool: pool)
        }
        winogradManyTileProducts(kind, input, s, u: UnsafePointer(u), outputs: outputs, tilesW: tilesW,
                                 tilesPerImage: tilesPerImage, totalTiles: totalTiles, bias: bias, output: output,
                                 streaming: streaming, pool: pool)
    }
    }
}

/// The many-tile path's chunks for output channels `outputs`, whose transformed filters are
/// U (`u`, [P][outputs][C]): each chunk of tiles transforms its inputs into V, takes the P
/// position products M[k] = U[k]·V[k] (on `AVX512StreamingGEMM` when `streaming`, else sgemm)
/// and transforms M into the output.
private func winogradManyTileProducts(_ kind: WinogradTile, _ input: UnsafePointer<Float>, _ s: Conv2DShape,
                                      u: UnsafePointer<Float>, outputs: Range<Int>, tilesW: Int, tilesPerImage: Int,
                                      totalTiles: Int, bias: UnsafePointer<Float>?,
                                      output: UnsafeMutablePointer<Float>, streaming: Bool, pool: ThreadPool) {
    let cin = s.inChannels, cout = outputs.count, positions = kind.positions
    let inImage = cin * s.height * s.width, outImage = s.outChannels * s.outHeight * s.outWidth
    let plane = cout * cin
    // Tiles per chunk: the transformed inputs V (P·C·T) and products M (P·O·T), P = 16 or 36, fit L2 when
    // that still leaves 64 tiles (TAESD at 512: 35% fewer CPU seconds than 1024-tile chunks,
    // AutoencoderKL unchanged), else the larger budget.
    let cacheChunk = winogradCacheChunkBudget / (positions * (cin + cout))
    var chunk = cacheChunk >= winogradMinimumCacheChunk
        ? min(1024, cacheChunk) : max(8, min(1024, winogradChunkBudget / (positions * (cin + cout))))
    let minChunks = 2 * pool.threadCount
    if (totalTiles + chunk - 1) / chunk < minChunks { chunk = max(8, (totalTiles + minChunks - 1) / minChunks) }
    if streaming {
        // At most one column block of the streaming product (64 tiles: the VAE's 128- to
        // 512-channel layers 10–15% faster than with 112–448; SD's 64×64 level the same), in
        // whole 16-column vectors; the count of chunks a multiple of the threads' where that
        // rounding leaves one.
        chunk = min(chunk, AVX512StreamingGEMM.columnBlock)
        let threads = pool.threadCount
        let count = ((totalTiles + chunk - 1) / chunk + threads - 1) / threads * threads
        chunk = ((totalTiles + count - 1) / count + 15) / 16 * 16
    }
    let chunks = (totalTiles + chunk - 1) / chunk

    pool.parallelFor(0..<chunks) { range, worker in
        let buf = pool.scratch(worker: worker, count: positions * chunk * (cin + cout))
        for ch in range {
            let t0 = ch * chunk
            let count = min(chunk, totalTiles - t0)
            let v = buf, m = buf + positions * cin * count
            // V[k][c][t] = (Bᵀ d B)[k] for the input tile of tile t, channel c.
            kind.transformInput(input, s, inImage: inImage, tilesW: tilesW, tilesPerImage: tilesPerImage,
                                firstTile: t0, count: count, channels: 0..<cin, into: v)
            // M[k] = U[k] · V[k]: (O×C)·(C×T), one GEMM per tile position. On AVX-512 U's rows
            // stream against V's columns (docs/BENCHMARKS.md, 2026-12-06 (night): sgemm's
            // packing of both on every chunk cost SD's 64×64 level 18% and the VAE's 512-channel
            // layers 25%). In the last chunk, whose tiles need not fill whole vectors, it reads
            // up to 15 floats past each row of V[k]: the next position's V, or M after the last.
            for k in 0..<positions {
                #if arch(x86_64)
                if streaming {
                    AVX512StreamingGEMM.multiply(rows: cout, cols: count, depth: cin, w: u + k * plane, ldw: cin,
                                                 x: v + k * cin * count, ldx: count, accumulate: false,
                                                 y: m + k * cout * count, ldy: count)
                    continue
                }
                #endif
                GEMM.gemm(m: cout, n: count, k: cin, a: u + k * plane, lda: cin,
                          b: v + k * cin * count, ldb: count, beta: 0, c: m + k * cout * count, ldc: count)
            }
            kind.transformOutput(m, s, outImage: outImage, tilesW: tilesW, tilesPerImage: tilesPerImage,
                                 firstTile: t0, count: count, channels: outputs, bias: bias, output: output)
        }
    }
}

/// U[k][o − first][c − c0] = (G g Gᵀ)[k] for the filters g = weight[o, c] of output channels
/// `outputs` and input channels `channels` (all `cin` when nil; c0 its first), at
/// `u + k·plane + (o − first)·channels.count + (c − c0)`. 16-bit weights are widened one
/// output channel's filters at a time (channels.count·9 floats in the worker's weight scratch)
/// right before their transform; U itself is float32.
@inline(__always)
func winogradTransformFilters(_ kind: WinogradTile, weight: WeightOperand, cin: Int, channels: Range<Int>? = nil,
                              outputs: Range<Int>, into u: UnsafeMutablePointer<Float>, plane: Int, worker: Int,
                              pool: ThreadPool) {
    let first = outputs.lowerBound
    let c0 = channels?.lowerBound ?? 0, count = channels?.count ?? cin
    switch weight {
    case .f32(let w):
        for o in outputs {
            kind.transformWeights(w + o * cin * 9 + c0 * 9, cin: count, into: u + (o - first) * count, plane: plane)
        }
    case .half, .packed:
        let wide = pool.weightScratch(worker: worker, count: count * 9)
        for o in outputs {
            weight.advanced(by: o * cin * 9 + c0 * 9).widen(rows: 1, cols: count * 9, ld: count * 9, into: wide,
                                                            dstLd: count * 9)
            kind.transformWeights(wide, cin: count, into: u + (o - first) * count, plane: plane)
        }
    }
}

/// Image index and tile row and column of tile number `tile` (tiles numbered row-major
/// within an image, images one after another).
@inline(__always)
func winogradTilePosition(_ tile: Int, tilesPerImage: Int, tilesW: Int) -> (n: Int, ty: Int, tx: Int) {
    let n = tile / tilesPerImage
    let rem = tile - n * tilesPerImage
    let ty = rem / tilesW
    return (n, ty, rem - ty * tilesW)
}

/// Bᵀ d B for tiles [firstTile, firstTile + count) and every channel; V is [16][C][count].
/// Eight tiles along a row go through SIMD8 lanes, read where they lie when their 18-wide
/// input span is inside the image, else from a zero-padded copy of the span (`f2StageStride`);
/// tiles left over in a row gather one at a time.
@inline(__always)
func winogradInputTransform(_ input: UnsafePointer<Float>, _ s: Conv2DShape, inImage: Int, tilesW: Int,
                            tilesPerImage: Int, firstTile: Int, count: Int, channels: Range<Int>,
                            into v: UnsafeMutablePointer<Float>) {
    let cin = s.inChannels, H = s.height, W = s.width
    let padT = s.padding.top, padL = s.padding.left
    let kStride = cin * count
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * f2StageStride) { buffer in
    guard let stage = buffer.baseAddress else { return }
    var t = 0
    while t < count {
        let (n, ty, tx) = winogradTilePosition(firstTile + t, tilesPerImage: tilesPerImage, tilesW: tilesW)
        let iy0 = 2 * ty - padT, ix0 = 2 * tx - padL
        let img = input + n * inImage
        // Vector path: 8 tiles in the same row (at the padded border, SD's 16×16 and 32×32
        // levels have no such group inside the image: their spans start at column −1).
        if tx + 8 <= tilesW && t + 8 <= count {
            let inside = iy0 >= 0 && iy0 + 4 <= H && ix0 >= 0 && ix0 + 18 <= W
            for c in channels {
                let (base, stride) = winogradGroupRows(img + c * H * W, height: H, width: W, top: iy0, left: ix0,
                                                       rows: 4, span: 18, inside: inside, stage: stage,
                                                       stageStride: f2StageStride)
                // (d B) per input row r: columns j = 0…3 of each tile are x[2i + j].
                func rowTransform(_ r: Int) -> (VFloat, VFloat, VFloat, VFloat) {
                    let p = UnsafeRawPointer(base + r * stride)
                    let a = p.loadUnaligned(as: SIMD16<Float>.self)
                    let b = p.loadUnaligned(fromByteOffset: 8, as: SIMD16<Float>.self)
                    let x0 = a.evenHalf, x1 = a.oddHalf, x2 = b.evenHalf, x3 = b.oddHalf
                    return (x0 - x2, x1 + x2, x2 - x1, x1 - x3)
                }
                let r0 = rowTransform(0), r1 = rowTransform(1), r2 = rowTransform(2), r3 = rowTransform(3)
                let dst = v + c * count + t
                // Bᵀ along rows: V[0] = r0 − r2, V[1] = r1 + r2, V[2] = r2 − r1, V[3] = r1 − r3.
                vstore(r0.0 - r2.0, dst, 0); vstore(r0.1 - r2.1, dst, kStride); vstore(r0.2 - r2.2, dst, 2 * kStride); vstore(r0.3 - r2.3, dst, 3 * kStride)
                vstore(r1.0 + r2.0, dst, 4 * kStride); vstore(r1.1 + r2.1, dst, 5 * kStride); vstore(r1.2 + r2.2, dst, 6 * kStride); vstore(r1.3 + r2.3, dst, 7 * kStride)
                vstore(r2.0 - r1.0, dst, 8 * kStride); vstore(r2.1 - r1.1, dst, 9 * kStride); vstore(r2.2 - r1.2, dst, 10 * kStride); vstore(r2.3 - r1.3, dst, 11 * kStride)
                vstore(r1.0 - r3.0, dst, 12 * kStride); vstore(r1.1 - r3.1, dst, 13 * kStride); vstore(r1.2 - r3.2, dst, 14 * kStride); vstore(r1.3 - r3.3, dst, 15 * kStride)
            }
            t += 8
            continue
        }
        // Scalar path with zero padding.
        for c in channels {
            let chan = img + c * H * W
            var d = (SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>())
            func load(_ r: Int) -> SIMD4<Float> {
                let iy = iy0 + r
                var row = SIMD4<Float>()
                if iy >= 0 && iy < H {
                    for j in 0..<4 { let ix = ix0 + j; if ix >= 0 && ix < W { row[j] = chan[iy * W + ix] } }
                }
                return row
            }
            d = (load(0), load(1), load(2), load(3))
            func rt(_ x: SIMD4<Float>) -> SIMD4<Float> { SIMD4(x[0] - x[2], x[1] + x[2], x[2] - x[1], x[1] - x[3]) }
            let r0 = rt(d.0), r1 = rt(d.1), r2 = rt(d.2), r3 = rt(d.3)
            let v0 = r0 - r2, v1 = r1 + r2, v2 = r2 - r1, v3 = r1 - r3
            let dst = v + c * count + t
            for j in 0..<4 {
                dst[j * kStride] = v0[j]
                dst[(4 + j) * kStride] = v1[j]
                dst[(8 + j) * kStride] = v2[j]
                dst[(12 + j) * kStride] = v3[j]
            }
        }
        t += 1
    }
    }
}

/// Row stride of `winogradInputTransform`'s zero-padded copy of a group's 4 × 18 input span
/// (its 16-float loads reach float 17 of a row).
private let f2StageStride = 24

/// Where a group of tiles reads its `rows` × `span` input block of one channel (`chan`, a
/// height × width plane) whose top-left is (top, left): in place when `inside`, else from
/// `stage`, filled here with the block's part inside the plane and zeros around it (row stride
/// `stageStride`). Returns the block's first float and its row stride.
@inline(__always)
func winogradGroupRows(_ chan: UnsafePointer<Float>, height: Int, width: Int, top: Int, left: Int, rows: Int,
                       span: Int, inside: Bool, stage: UnsafeMutablePointer<Float>,
                       stageStride: Int) -> (UnsafePointer<Float>, Int) {
    if inside { return (chan + top * width + left, width) }
    stage.update(repeating: 0, count: rows * stageStride)
    let x0 = max(0, left), x1 = min(width, left + span)
    if x0 < x1 {
        for r in 0..<rows {
            let y = top + r
            if y < 0 || y >= height { continue }
            (stage + r * stageStride + (x0 - left)).update(from: chan + y * width + x0, count: x1 - x0)
        }
    }
    return (UnsafePointer(stage), stageStride)
}

/// Aᵀ m A (+ bias) for tiles [firstTile, firstTile + count) and every output channel,
/// writing the 2×2 output tiles (clipped at odd edges). M is [16][O][count].
@inline(__always)
func winogradOutputTransform(_ m: UnsafeMutablePointer<Float>, _ s: Conv2DShape, outImage: Int, tilesW: Int,
                             tilesPerImage: Int, firstTile: Int, count: Int, channels: Range<Int>,
                             bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
    let ho = s.outHeight, wo = s.outWidth
    let o0 = channels.lowerBound
    let kStride = channels.count * count
    var t = 0
    while t < count {
        let (n, ty, tx) = winogradTilePosition(firstTile + t, tilesPerImage: tilesPerImage, tilesW: tilesW)
        let oy = 2 * ty, ox = 2 * tx
        let img = output + n * outImage
        if tx + 8 <= tilesW && t + 8 <= count && oy + 2 <= ho && ox + 16 <= wo {
            for o in channels {
                let src = m + (o - o0) * count + t
                @inline(__always) func ld(_ k: Int) -> VFloat { vload(src, k * kStride) }
                // s_r = (m A) per row r: [m0 + m1 + m2, m1 − m2 − m3].
                let s00 = ld(0) + ld(1) + ld(2), s01 = ld(1) - ld(2) - ld(3)
                let s10 = ld(4) + ld(5) + ld(6), s11 = ld(5) - ld(6) - ld(7)
                let s20 = ld(8) + ld(9) + ld(10), s21 = ld(9) - ld(10) - ld(11)
                let s30 = ld(12) + ld(13) + ld(14), s31 = ld(13) - ld(14) - ld(15)
                let b = VFloat(repeating: bias?[o] ?? 0)
                let y00 = s00 + s10 + s20 + b, y01 = s01 + s11 + s21 + b
                let y10 = s10 - s20 - s30 + b, y11 = s11 - s21 - s31 + b
                var row0 = SIMD16<Float>(), row1 = SIMD16<Float>()
                row0.evenHalf = y00; row0.oddHalf = y01
                row1.evenHalf = y10; row1.oddHalf = y11
                let dst = img + o * ho * wo + oy * wo + ox
                UnsafeMutableRawPointer(dst).storeBytes(of: row0, as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(dst + wo).storeBytes(of: row1, as: SIMD16<Float>.self)
            }
            t += 8
            continue
        }
        for o in channels {
            let src = m + (o - o0) * count + t
            // Rows of m as SIMD4, then s_r = (m A)_r and y = Aᵀ s.
            @inline(__always) func mrow(_ r: Int) -> SIMD4<Float> {
                SIMD4(src[(4 * r) * kStride], src[(4 * r + 1) * kStride], src[(4 * r + 2) * kStride], src[(4 * r + 3) * kStride])
            }
            @inline(__always) func sa(_ x: SIMD4<Float>) -> SIMD2<Float> { SIMD2(x[0] + x[1] + x[2], x[1] - x[2] - x[3]) }
            let s0 = sa(mrow(0)), s1 = sa(mrow(1)), s2 = sa(mrow(2)), s3 = sa(mrow(3))
            let b = SIMD2<Float>(repeating: bias?[o] ?? 0)
            let y0 = s0 + s1 + s2 + b, y1 = s1 - s2 - s3 + b
            let dst = img + o * ho * wo
            for j in 0..<2 where ox + j < wo {
                dst[oy * wo + ox + j] = y0[j]
                if oy + 1 < ho { dst[(oy + 1) * wo + ox + j] = y1[j] }
            }
        }
        t += 1
    }
}

/// U[k][c] = (G g Gᵀ)[k] for the `cin` 3×3 filters g of one output channel (`src` is
/// [cin, 3, 3]); element k of channel c goes to `u[k·plane + c]`. Eight channels at a time
/// in SIMD lanes, then a scalar tail.
@inline(__always)
func winogradWeightTransform(_ src: UnsafePointer<Float>, cin: Int, into u: UnsafeMutablePointer<Float>, plane: Int) {
    let half = VFloat(repeating: 0.5)
    var c = 0
    while c + 8 <= cin {
        // g[i] holds filter element i (row-major 3×3) of channels c…c+7.
        var g = (VFloat(), VFloat(), VFloat(), VFloat(), VFloat(), VFloat(), VFloat(), VFloat(), VFloat())
        for lane in 0..<8 {
            let f = src + (c + lane) * 9
            g.0[lane] = f[0]; g.1[lane] = f[1]; g.2[lane] = f[2]
            g.3[lane] = f[3]; g.4[lane] = f[4]; g.5[lane] = f[5]
            g.6[lane] = f[6]; g.7[lane] = f[7]; g.8[lane] = f[8]
        }
        // t = G g: rows t0 = g row 0, t1 = ½(g0 + g1 + g2), t2 = ½(g0 − g1 + g2), t3 = g row 2.
        @inline(__always) func store(_ r: Int, _ a: VFloat, _ b: VFloat, _ d: VFloat) {
            let base = u + 4 * r * plane + c
            vstore(a, base, 0)
            vstore(half * (a + b + d), base, plane)
            vstore(half * (a - b + d), base, 2 * plane)
            vstore(d, base, 3 * plane)
        }
        store(0, g.0, g.1, g.2)
        store(1, half * (g.0 + g.3 + g.6), half * (g.1 + g.4 + g.7), half * (g.2 + g.5 + g.8))
        store(2, half * (g.0 - g.3 + g.6), half * (g.1 - g.4 + g.7), half * (g.2 - g.5 + g.8))
        store(3, g.6, g.7, g.8)
        c += 8
    }
    while c < cin {
        let f = src + c * 9
        for r in 0..<4 {
            var row = SIMD4<Float>()   // t[r][0...2]
            for j in 0..<3 {
                let a = f[j], b = f[3 + j], d = f[6 + j]
                switch r {
                case 0: row[j] = a
                case 1: row[j] = 0.5 * (a + b + d)
                case 2: row[j] = 0.5 * (a - b + d)
                default: row[j] = d
                }
            }
            let base = u + 4 * r * plane + c
            base[0] = row[0]
            base[plane] = 0.5 * (row[0] + row[1] + row[2])
            base[2 * plane] = 0.5 * (row[0] - row[1] + row[2])
            base[3 * plane] = row[2]
        }
        c += 1
    }
}
