import Kernels

// Small fused operations the models need that the Kernels target does not offer
// (private to Models; each is a single pass over memory, split across the pool).

/// output[r, :] += input[r, :]·Wᵀ + b for every row r — a linear layer whose result is
/// added onto a residual in place (saves a temporary and an extra pass).
/// - Parameters: input [rows, in]; weight [out, in]; output [rows, out]
func linearAccumulate(_ input: Tensor, _ layer: LinearWeights, into output: Tensor, pool: ThreadPool) {
    let inF = layer.inFeatures, outF = layer.outFeatures
    let rows = input.count / inF
    precondition(output.count == rows * outF, "linearAccumulate: output \(output.shape) is not [\(rows), \(outF)]")
    OperatorProfile.measure("linear+residual \(rows)x\(inF)->\(outF)") {
        linearProduct(input.data, rows: rows, inFeatures: inF, weight: layer.weight.operand, bias: layer.bias?.data,
                      outFeatures: outF, output: output.data, accumulate: true, pool: pool)
    }
}

/// x[r, :] += bias for every row (x is [rows, D], bias [D]).
func addRowBias(_ x: Tensor, _ bias: Tensor, pool: ThreadPool) {
    let d = bias.count
    let rows = x.count / d
    let px = x.data, pb = UnsafePointer(bias.data)
    pool.parallelFor(0..<rows, grain: max(1, 16_384 / max(d, 1))) { r, _ in
        for row in r { vadd(px + row * d, pb, px + row * d, d) }
    }
}

/// Nearest-neighbour resize of [N, C, H, W] to [N, C, Ho, Wo] with PyTorch's index rule
/// src = ⌊dst · in / out⌋ (`F.interpolate(size=…, mode="nearest")`); used by the UNet's
/// upsamplers when a skip connection is not exactly twice the size (odd latent sides).
func upsampleNearest(_ input: Tensor, output: Tensor, pool: ThreadPool) {
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let ho = output.shape[2], wo = output.shape[3]
    if ho == 2 * h && wo == 2 * w { upsampleNearest2x(input, output: output, pool: pool); return }
    let src = UnsafePointer(input.data), dst = output.data
    pool.parallelFor(0..<(n * c * ho), grain: 16) { r, _ in
        for row in r {
            let plane = row / ho, y = row % ho
            let sy = min(h - 1, (y * h) / ho)
            let s = src + (plane * h + sy) * w, d = dst + row * wo
            for x in 0..<wo { d[x] = s[min(w - 1, (x * w) / wo)] }
        }
    }
}

/// output = (a + b)·scale, elementwise (output may alias a or b).
func addScaled(_ a: Tensor, _ b: Tensor, scale: Float, output: Tensor, pool: ThreadPool) {
    add(a, b, output: output, pool: pool)
    if scale != 1 { Kernels.scale(output, by: scale, output: output, pool: pool) }
}
