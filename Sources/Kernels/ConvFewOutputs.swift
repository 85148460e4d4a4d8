/// 3×3 convolutions with at most four output channels (the UNet's conv_out, 320 → 4 latent
/// channels; the VAE decoder's, 128 → 3 RGB; TAESD's 64 → 3), computed directly: per output
/// row, sixteen pixels × every output channel in registers, summed over the input channels and
/// the nine taps from a zero-padded copy of the rows they read.
///
/// Why: im2col unfolds 9·C rows of every output pixel for a GEMM with only O ≤ 4 rows, so the
/// unfolding, not the arithmetic, was the cost: SD 1.5's conv_out took 7.7 ms at 512², batch 1
/// (0.2 GFLOP), the VAE decoder's 88 ms (docs/BENCHMARKS.md, 2026-12-06 (evening)).

/// Most output channels `conv2dFewOutputs` takes.
let fewOutputsMaximum = 4

/// Output rows per task of `conv2dFewOutputs`: its padded copy holds C·(rows + 2) input rows.
private let fewOutputsBandRows = 4

/// Whether `conv2dFewOutputs` computes this convolution: 3×3, stride 1, padding 1 on every
/// side, one to `fewOutputsMaximum` outputs, and enough inputs that the im2col GEMM's rows
/// would be few against its depth.
func fewOutputsApplies(_ s: Conv2DShape) -> Bool {
    s.kernelH == 3 && s.kernelW == 3 && s.stride == 1 && s.padding == .symmetric(1)
        && s.outChannels >= 1 && s.outChannels <= fewOutputsMaximum && s.inChannels >= 16
}

/// `conv2d` for `fewOutputsApplies` shapes. Work: bands of `fewOutputsBandRows` output rows of
/// one image. Each task copies the C·(band + 2) input rows its band reads into worker scratch,
/// zero-padded to a whole number of 16-float segments plus the two border columns, then for
/// each 16-pixel segment keeps 2·O vector accumulators over all channels and taps (weights
/// re-laid out once per call as [C][9][4], so one tap's O weights are adjacent).
func conv2dFewOutputs(_ input: UnsafePointer<Float>, weight: WeightOperand, bias: UnsafePointer<Float>?,
                      shape s: Conv2DShape, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
    let c = s.inChannels, o = s.outChannels, h = s.height, w = s.width
    precondition(fewOutputsApplies(s), "conv2dFewOutputs: \(s)")
    let segments = (w + 15) / 16, stride = segments * 16 + 2
    let bands = (h + fewOutputsBandRows - 1) / fewOutputsBandRows
    let taps = c * 9 * fewOutputsMaximum
    withUnsafeTemporaryAllocation(of: Float.self, capacity: taps + c * 9) { buffer in
        guard let wt = buffer.baseAddress else { return }
        // wt[(ci·9 + tap)·4 + oi] = weight[oi][ci][tap]; outputs past o are zero.
        let row = wt + taps
        wt.update(repeating: 0, count: taps)
        for oi in 0..<o {
            weight.advanced(by: oi * c * 9).widen(rows: 1, cols: c * 9, ld: c * 9, into: row, dstLd: c * 9)
            for i in 0..<(c * 9) { wt[i * fewOutputsMaximum + oi] = row[i] }
        }
        let weights = UnsafePointer(wt)
        pool.parallelFor(0..<(s.batch * bands)) { tasks, worker in
            let copy = pool.scratch(worker: worker, count: c * (fewOutputsBandRows + 2) * stride)
            for task in tasks {
                let n = task / bands, y0 = (task % bands) * fewOutputsBandRows
                let rows = min(fewOutputsBandRows, h - y0)
                let image = input + n * c * h * w
                // copy[ci][r][j] = input[ci][y0 − 1 + r][j − 1], zero outside the image.
                let copied = rows + 2
                for ci in 0..<c {
                    for r in 0..<copied {
                        let dst = copy + (ci * copied + r) * stride
                        let y = y0 - 1 + r
                        if y >= 0 && y < h {
                            // The row, and zeros in the border column and the last segment's spare lanes.
                            dst[0] = 0
                            (dst + 1).update(from: image + (ci * h + y) * w, count: w)
                            (dst + 1 + w).update(repeating: 0, count: stride - 1 - w)
                        } else {
                            dst.update(repeating: 0, count: stride)
                        }
                    }
                }
                for r in 0..<rows {
                    for seg in 0..<segments {
                        fewOutputsSegment(copy + r * stride + seg * 16, channelStride: copied * stride, rowStride: stride,
                                          channels: c, weights: weights, bias: bias, outputs: o,
                                          into: output + (n * o * h + y0 + r) * w + seg * 16, planeStride: h * w,
                                          count: min(16, w - seg * 16))
                    }
                }
            }
        }
    }
}

/// Sixteen output pixels of one row for every output channel: Σ over channels and taps of
/// weight · the input 16-vector at that tap (`src` is the padded copy at the tap (0, 0) of the
/// segment's first pixel), plus the bias; `count` of them stored per output plane.
@inline(__always)
private func fewOutputsSegment(_ src: UnsafePointer<Float>, channelStride: Int, rowStride: Int, channels: Int,
                               weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outputs: Int,
                               into out: UnsafeMutablePointer<Float>, planeStride: Int, count: Int) {
    var a0 = VFloat(), a1 = VFloat(), b0 = VFloat(), b1 = VFloat()
    var c0 = VFloat(), c1 = VFloat(), d0 = VFloat(), d1 = VFloat()
    var wp = weights
    for ci in 0..<channels {
        let chan = src + ci * channelStride
        for ky in 0..<3 {
            let line = chan + ky * rowStride
            for kx in 0..<3 {
                let x0 = vload(line, kx), x1 = vload(line, kx + 8)
                let w0 = VFloat(repeating: wp[0]), w1 = VFloat(repeating: wp[1])
                let w2 = VFloat(repeating: wp[2]), w3 = VFloat(repeating: wp[3])
                a0 = a0.addingProduct(w0, x0); a1 = a1.addingProduct(w0, x1)
                b0 = b0.addingProduct(w1, x0); b1 = b1.addingProduct(w1, x1)
                c0 = c0.addingProduct(w2, x0); c1 = c1.addingProduct(w2, x1)
                d0 = d0.addingProduct(w3, x0); d1 = d1.addingProduct(w3, x1)
                wp += fewOutputsMaximum
            }
        }
    }
    @inline(__always) func put(_ oi: Int, _ v0: VFloat, _ v1: VFloat) {
        let b = VFloat(repeating: bias?[oi] ?? 0), dst = out + oi * planeStride
        let y0 = v0 + b, y1 = v1 + b
        if count == 16 {
            vstore(y0, dst, 0); vstore(y1, dst, 8)
        } else {
            for i in 0..<count { dst[i] = i < 8 ? y0[i] : y1[i - 8] }
        }
    }
    put(0, a0, a1)
    if outputs > 1 { put(1, b0, b1) }
    if outputs > 2 { put(2, c0, c1) }
    if outputs > 3 { put(3, d0, d1) }
}
