/// Zero padding around the input of a convolution, in pixels per side.
public struct Conv2DPadding: Equatable, Sendable {
    public var top: Int, left: Int, bottom: Int, right: Int
    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top; self.left = left; self.bottom = bottom; self.right = right
    }
    /// The same padding on all four sides (PyTorch's `padding=p`).
    public static func symmetric(_ p: Int) -> Conv2DPadding { Conv2DPadding(top: p, left: p, bottom: p, right: p) }
}

/// Geometry of one 2-D convolution (NCHW input, [out, in, kh, kw] weights, no groups,
/// no dilation).
public struct Conv2DShape: Equatable, Sendable {
    public var batch: Int, inChannels: Int, height: Int, width: Int
    public var outChannels: Int, kernelH: Int, kernelW: Int
    public var stride: Int
    public var padding: Conv2DPadding

    public init(batch: Int, inChannels: Int, height: Int, width: Int,
                outChannels: Int, kernelH: Int, kernelW: Int, stride: Int, padding: Conv2DPadding) {
        self.batch = batch; self.inChannels = inChannels; self.height = height; self.width = width
        self.outChannels = outChannels; self.kernelH = kernelH; self.kernelW = kernelW
        self.stride = stride; self.padding = padding
    }

    /// Output height: ⌊(H + top + bottom − kh) / stride⌋ + 1 (PyTorch's formula).
    public var outHeight: Int { (height + padding.top + padding.bottom - kernelH) / stride + 1 }
    /// Output width: ⌊(W + left + right − kw) / stride⌋ + 1.
    public var outWidth: Int { (width + padding.left + padding.right - kernelW) / stride + 1 }
    /// Multiply-adds ×2 for the whole call (bias ignored).
    public var flops: Double {
        2 * Double(batch * outChannels * outHeight * outWidth) * Double(inChannels * kernelH * kernelW)
    }

    /// "k3x3 s1 NxCxHxW->O", how `OperatorProfile` names a convolution.
    var profileName: String { "k\(kernelH)x\(kernelW) s\(stride) \(batch)x\(inChannels)x\(height)x\(width)->\(outChannels)" }
}

/// 2-D convolution, PyTorch semantics (`nn.Conv2d`, groups = 1, dilation = 1).
/// - Parameters:
///   - input: [N, C, H, W]
///   - weight: [O, C, kh, kw]
///   - bias: [O] or nil
///   - output: [N, O, Ho, Wo]; must not alias input
///
/// Method: each pool worker takes tiles of output pixels, unfolds the matching input
/// patches into its own bounded scratch buffer (im2col, at most `im2colBudget` floats),
/// and multiplies the weights by it with one single-threaded sgemm that writes straight
/// into the output. A 1×1 stride-1 unpadded convolution skips the unfold.
public func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1,
                   padding: Conv2DPadding = .symmetric(0), output: Tensor, pool: ThreadPool) {
    conv2d(input, weight: WeightTensor(weight), bias: bias, stride: stride, padding: padding, output: output, pool: pool)
}

/// `conv2d` with the weight in the precision it is kept in (see `WeightTensor`): 16-bit
/// weights are widened inside the kernel, block by block (`GEMM.gemm` with a weight
/// operand; Winograd's per-call weight transform widens each filter as it reads it).
public func conv2d(_ input: Tensor, weight: WeightTensor, bias: Tensor?, stride: Int = 1,
                   padding: Conv2DPadding = .symmetric(0), output: Tensor, pool: ThreadPool) {
    precondition(input.rank == 4, "conv2d: input must be [N, C, H, W], got \(input.shape)")
    precondition(weight.rank == 4 && weight.shape[1] == input.shape[1],
                 "conv2d: weight \(weight.shape) does not match input channels of \(input.shape)")
    let shape = Conv2DShape(batch: input.shape[0], inChannels: input.shape[1], height: input.shape[2],
                            width: input.shape[3], outChannels: weight.shape[0], kernelH: weight.shape[2],
                            kernelW: weight.shape[3], stride: stride, padding: padding)
    precondition(stride >= 1 && shape.outHeight >= 1 && shape.outWidth >= 1, "conv2d: empty output for \(shape)")
    precondition(output.shape == [shape.batch, shape.outChannels, shape.outHeight, shape.outWidth],
                 "conv2d: output \(output.shape) should be [\(shape.batch), \(shape.outChannels), \(shape.outHeight), \(shape.outWidth)]")
    if let bias { precondition(bias.count == shape.outChannels, "conv2d: bias \(bias.shape) is not [\(shape.outChannels)]") }
    conv2d(input.data, weight: weight.operand, bias: bias?.data, shape: shape, output: output.data, pool: pool)
}

/// Largest im2col tile per worker, in floats (24 MiB). Wide tiles matter: OpenBLAS re-packs
/// the weight matrix on every sgemm call, so each call should cover many output pixels.
public let im2colBudget = 6 << 20

/// Pointer form of `conv2d`.
///
/// Work is cut into tasks of (column tile, output-channel block). Columns are the output
/// pixels of all images laid end to end, so low-resolution layers still give wide GEMMs;
/// a tile that crosses an image boundary is computed into worker scratch and scattered.
/// When there are fewer column tiles than threads, output channels are split instead.
public func conv2d(_ input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                   shape s: Conv2DShape, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
    conv2d(input, weight: .f32(weight), bias: bias, shape: s, output: output, pool: pool)
}

/// Pointer form of `conv2d` with a weight operand (float32 or 16-bit).
public func conv2d(_ input: UnsafePointer<Float>, weight: WeightOperand, bias: UnsafePointer<Float>?,
                   shape s: Conv2DShape, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
    if fewOutputsApplies(s) && !pool.isInsideWorker {
        OperatorProfile.measure("conv direct \(s.profileName)") {
            conv2dFewOutputs(input, weight: weight, bias: bias, shape: s, output: output, pool: pool)
        }
    } else if let tile = winogradTile(for: s), !pool.isInsideWorker {
        OperatorProfile.measure("conv winograd-\(tile) \(s.profileName)") {
            conv2dWinograd(input, weight: weight, bias: bias, shape: s, tile: tile, output: output, pool: pool)
        }
    } else {
        OperatorProfile.measure("conv im2col \(s.profileName)") {
            conv2dIm2col(input, weight: weight, bias: bias, shape: s, output: output, pool: pool)
        }
    }
}

/// `conv2d`'s im2col path (every convolution Winograd does not take): unfold, then sgemm, or
/// a weight-streaming product for few columns (`convProduct`).
private func conv2dIm2col(_ input: UnsafePointer<Float>, weight: WeightOperand, bias: UnsafePointer<Float>?,
                          shape s: Conv2DShape, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
    let ho = s.outHeight, wo = s.outWidth, hw = ho * wo
    let kdim = s.inChannels * s.kernelH * s.kernelW
    let direct = s.kernelH == 1 && s.kernelW == 1 && s.stride == 1 && s.padding == .symmetric(0)
    let totalCols = s.batch * hw
    let threads = pool.threadCount
    // Column tile: as wide as the scratch budget allows (1×1 convs read the input in place).
    var tile = direct ? 1024 : max(64, min(2048, im2colBudget / max(kdim, 1)))
    // Keep at least two tasks per thread when the layer is large enough to split by columns.
    let maxUsefulTile = (totalCols + 2 * threads - 1) / (2 * threads)
    if maxUsefulTile >= 256 { tile = min(tile, maxUsefulTile) }
    tile = min(tile, totalCols)
    if direct {
        // Direct 1×1 tiles must stay inside one image (the GEMM reads the input in place).
        tile = min(tile, hw)
    }
    let colTiles = direct ? s.batch * ((hw + tile - 1) / tile) : (totalCols + tile - 1) / tile
    let tilesPerImage = (hw + tile - 1) / tile
    // Output-channel blocks: enough tasks for every thread, blocks of ≥ 64 channels.
    var oBlocks = 1
    if colTiles < 2 * threads { oBlocks = max(1, min((2 * threads + colTiles - 1) / colTiles, s.outChannels / 64)) }
    let oBlock = (s.outChannels + oBlocks - 1) / oBlocks
    let inImage = s.inChannels * s.height * s.width
    let outImage = s.outChannels * hw
    /// Every task's product (column tile × output-channel block), reading the unfolded
    /// columns from `shared` when given, else unfolding its own tile.
    func multiplyTiles(shared: UnsafeMutablePointer<Float>?) {
    pool.parallelFor(0..<(colTiles * oBlocks)) { tasks, worker in
        for task in tasks {
            let ct = task / oBlocks
            let o0 = (task % oBlocks) * oBlock
            let oCount = min(oBlock, s.outChannels - o0)
            if oCount <= 0 { continue }
            let w = weight.advanced(by: o0 * kdim)
            var wScratch: UnsafeMutablePointer<Float>?
            if case .half = weight { wScratch = pool.weightScratch(worker: worker, count: GEMM.weightBlockFloats) }
            if direct {
                let n = ct / tilesPerImage
                let p0 = (ct % tilesPerImage) * tile
                let cols = min(tile, hw - p0)
                let dst = output + n * outImage + o0 * hw + p0
                var beta: Float = 0
                if let bias {
                    for o in 0..<oCount { (dst + o * hw).update(repeating: bias[o0 + o], count: cols) }
                    beta = 1
                }
                convProduct(m: oCount, n: cols, k: kdim, w: w, x: input + n * inImage + p0, ldx: hw, xPadded: false,
                            beta: beta, c: dst, ldc: hw, scratch: wScratch)
                continue
            }
            let c0 = ct * tile
            let cols = min(tile, totalCols - c0)
            let firstImage = c0 / hw, lastImage = (c0 + cols - 1) / hw
            let spans = firstImage != lastImage
            let ldu = unfoldedRowStride(columns: cols)
            let buf: UnsafeMutablePointer<Float>, tmp: UnsafeMutablePointer<Float>
            if let shared {
                buf = shared
                tmp = pool.scratch(worker: worker, count: spans ? oCount * cols : 0)
            } else {
                buf = pool.scratch(worker: worker, count: kdim * ldu + (spans ? oCount * cols : 0))
                tmp = buf + kdim * ldu
                unfoldColumns(input, s, c0: c0, cols: cols, into: buf, rowStride: ldu, channels: 0..<s.inChannels)
            }
            if !spans {
                let p0 = c0 - firstImage * hw
                let dst = output + firstImage * outImage + o0 * hw + p0
                var beta: Float = 0
                if let bias {
                    for o in 0..<oCount { (dst + o * hw).update(repeating: bias[o0 + o], count: cols) }
                    beta = 1
                }
                convProduct(m: oCount, n: cols, k: kdim, w: w, x: buf, ldx: ldu, xPadded: true, beta: beta, c: dst, ldc: hw,
                            scratch: wScratch)
            } else {
                convProduct(m: oCount, n: cols, k: kdim, w: w, x: buf, ldx: ldu, xPadded: true, beta: 0, c: tmp, ldc: cols,
                            scratch: wScratch)
                var c = c0
                while c < c0 + cols {
                    let n = c / hw, p = c - n * hw
                    let run = min(hw - p, c0 + cols - c)
                    for o in 0..<oCount {
                        let src = tmp + o * cols + (c - c0)
                        let dst = output + n * outImage + (o0 + o) * hw + p
                        if let bias {
                            let b = bias[o0 + o]
                            for j in 0..<run { dst[j] = src[j] + b }
                        } else {
                            dst.update(from: src, count: run)
                        }
                    }
                    c += run
                }
            }
        }
    }
    }

    // One column tile split by output channels (low-resolution layers): unfold it once, in
    // parallel by input channels, instead of once per channel block.
    if !direct && colTiles == 1 && oBlocks > 1 && !pool.isInsideWorker {
        let ldu = unfoldedRowStride(columns: totalCols)
        pool.withSharedScratch(count: kdim * ldu) { buf in
            pool.parallelFor(0..<s.inChannels, grain: 16) { channels, _ in
                unfoldColumns(input, s, c0: 0, cols: totalCols, into: buf, rowStride: ldu, channels: channels)
            }
            multiplyTiles(shared: buf)
        }
    } else {
        multiplyTiles(shared: nil)
    }
}

/// Unfolds output columns [c0, c0 + cols) of the batch (images laid end to end) for input
/// channels `channels` into `buf`, a (C·kh·kw) × cols matrix with `rowStride` (≥ cols) floats
/// between rows, the floats past `cols` zero (rows of other channels untouched).
private func unfoldColumns(_ input: UnsafePointer<Float>, _ s: Conv2DShape, c0: Int, cols: Int,
                           into buf: UnsafeMutablePointer<Float>, rowStride: Int, channels: Range<Int>) {
    let hw = s.outHeight * s.outWidth, inImage = s.inChannels * s.height * s.width
    var part = s
    part.inChannels = channels.count
    let rows = s.kernelH * s.kernelW
    let rowOffset = channels.lowerBound * rows * rowStride
    if rowStride > cols {
        for r in 0..<(channels.count * rows) {
            (buf + rowOffset + r * rowStride + cols).update(repeating: 0, count: rowStride - cols)
        }
    }
    var c = c0
    while c < c0 + cols {
        let n = c / hw, p = c - n * hw
        let run = min(hw - p, c0 + cols - c)
        im2colTile(input + n * inImage + channels.lowerBound * s.height * s.width, part, p0: p, cols: run,
                   into: buf + rowOffset + (c - c0), rowStride: rowStride)
        c += run
    }
}

/// One task's product C[m×n] = W[m×k]·X[k×n] (+ C when beta is 1): on AVX-512 CPUs with at
/// most `avx512StreamingMaxColumns` columns `avx512StreamingGemm`, else with fp32 weights and at
/// most `streamingGEMMMaxColumns` columns `streamingGemm` (low-resolution layers), else sgemm.
@inline(__always)
private func convProduct(m: Int, n: Int, k: Int, w: WeightOperand, x: UnsafePointer<Float>, ldx: Int, xPadded: Bool,
                         beta: Float,
                         c: UnsafeMutablePointer<Float>, ldc: Int, scratch: UnsafeMutablePointer<Float>?) {
    if avx512StreamingApplies(columns: n), avx512StreamingTakes(w, depth: k, scratch: scratch) {
        precondition(beta == 0 || beta == 1, "convProduct: beta \(beta)")
        avx512StreamingGemm(m: m, n: n, k: k, w: w, x: x, ldx: ldx, xPadded: xPadded, accumulate: beta == 1, c: c, ldc: ldc,
                            scratch: scratch)
    } else if case let .f32(pw) = w, streamingGEMMApplies(columns: n) {
        precondition(beta == 0 || beta == 1, "convProduct: beta \(beta)")
        streamingGemm(m: m, n: n, k: k, w: pw, ldw: k, x: x, ldx: ldx, accumulate: beta == 1, c: c, ldc: ldc)
    } else {
        GEMM.gemm(m: m, n: n, k: k, a: w, lda: k, b: .f32(x), ldb: ldx, beta: beta, c: c, ldc: ldc, scratch: scratch)
    }
}

/// Unfolds the input patches for output pixels [p0, p0 + cols) of one image into
/// `buf` as a (C·kh·kw) × cols matrix with `rowStride` floats between rows; row
/// (c, ky, kx), column = output pixel.
@inline(__always)
func im2colTile(_ src: UnsafePointer<Float>, _ s: Conv2DShape, p0: Int, cols: Int, into buf: UnsafeMutablePointer<Float>,
                rowStride: Int) {
    let wo = s.outWidth
    let stride = s.stride, padT = s.padding.top, padL = s.padding.left
    let H = s.height, W = s.width
    var row = 0
    for c in 0..<s.inChannels {
        let plane = src + c * H * W
        for ky in 0..<s.kernelH {
            for kx in 0..<s.kernelW {
                let dstRow = buf + row * rowStride
                var p = p0
                let pEnd = p0 + cols
                while p < pEnd {
                    let oy = p / wo
                    let ox0 = p - oy * wo
                    let run = min(wo - ox0, pEnd - p)   // pixels left on this output row
                    let d = dstRow + (p - p0)
                    let iy = oy * stride - padT + ky
                    if iy < 0 || iy >= H {
                        d.update(repeating: 0, count: run)
                    } else {
                        let srcRow = plane + iy * W
                        if stride == 1 {
                            // ix = ox − padL + kx: valid for ox in [padL − kx, W + padL − kx).
                            let ixStart = ox0 - padL + kx
                            var j = 0
                            while j < run && ixStart + j < 0 { d[j] = 0; j += 1 }
                            let validEnd = min(run, W - ixStart)
                            if validEnd > j {
                                (d + j).update(from: srcRow + ixStart + j, count: validEnd - j)
                                j = validEnd
                            }
                            while j < run { d[j] = 0; j += 1 }
                        } else {
                            for j in 0..<run {
                                let ix = (ox0 + j) * stride - padL + kx
                                d[j] = (ix >= 0 && ix < W) ? srcRow[ix] : 0
                            }
                        }
                    }
                    p += run
                }
                row += 1
            }
        }
    }
}
