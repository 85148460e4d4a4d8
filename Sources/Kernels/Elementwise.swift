import Foundation

/// output = a + b, elementwise (same counts; `output` may alias `a` or `b`). Use it for
/// residual connections: `add(x, residual, output: x)`.
public func add(_ a: Tensor, _ b: Tensor, output: Tensor, pool: ThreadPool) {
    precondition(a.count == b.count && a.count == output.count, "add: \(a.shape) + \(b.shape) → \(output.shape)")
    let pa = UnsafePointer(a.data), pb = UnsafePointer(b.data), po = output.data
    pool.parallelFor(0..<a.count, grain: 32_768) { r, _ in
        vadd(pa + r.lowerBound, pb + r.lowerBound, po + r.lowerBound, r.count)
    }
}

/// x[n, c, ...] += v[n, c] — adds a per-sample, per-channel vector over the spatial dims
/// (the projected time embedding in diffusers `ResnetBlock2D`).
/// - Parameters:
///   - x: [N, C, ...spatial], updated in place
///   - perChannel: [N, C]
public func addPerChannel(_ x: Tensor, _ perChannel: Tensor, pool: ThreadPool) {
    precondition(x.rank >= 2 && perChannel.count == x.shape[0] * x.shape[1],
                 "addPerChannel: \(perChannel.shape) does not match [N, C] of \(x.shape)")
    let planes = x.shape[0] * x.shape[1]
    let spatial = x.count / max(planes, 1)
    let px = x.data, pv = UnsafePointer(perChannel.data)
    pool.parallelFor(0..<planes, grain: max(1, 16_384 / max(spatial, 1))) { r, _ in
        for p in r {
            let v = VFloat(repeating: pv[p]), s = pv[p], row = px + p * spatial
            var i = 0
            while i + 8 <= spatial { vstore(vload(row, i) + v, row, i); i += 8 }
            while i < spatial { row[i] += s; i += 1 }
        }
    }
}

/// output[n, c, ...] = x[n, c, ...] + bias[c] — one bias per channel, broadcast over the
/// batch and spatial dims (a 1×1 conv's bias, as in diffusers `Transformer2DModel.proj_out`
/// and the VAE attention's `to_out`). `output` may alias `x`.
/// - Parameters:
///   - x: [N, C, ...spatial]
///   - bias: [C]
///   - output: same count as x
public func addChannelBias(_ x: Tensor, _ bias: Tensor, output: Tensor, pool: ThreadPool) {
    precondition(x.rank >= 2 && bias.count == x.shape[1] && output.count == x.count,
                 "addChannelBias: bias \(bias.shape) does not match C of \(x.shape), or output \(output.shape)")
    let c = x.shape[1], planes = x.shape[0] * c
    let spatial = x.count / max(planes, 1)
    let px = UnsafePointer(x.data), po = output.data, pb = UnsafePointer(bias.data)
    pool.parallelFor(0..<planes, grain: max(1, 16_384 / max(spatial, 1))) { r, _ in
        for plane in r {
            let v = pb[plane % c], vv = VFloat(repeating: v)
            let s = px + plane * spatial, d = po + plane * spatial
            var i = 0
            while i + vectorWidth <= spatial { vstore(vload(s, i) + vv, d, i); i += vectorWidth }
            while i < spatial { d[i] = s[i] + v; i += 1 }
        }
    }
}

/// Scales every element: output = x·alpha (may alias).
public func scale(_ x: Tensor, by alpha: Float, output: Tensor, pool: ThreadPool) {
    precondition(x.count == output.count, "scale: \(x.shape) → \(output.shape)")
    if x.data != output.data { output.copy(from: x) }
    let p = output.data
    pool.parallelFor(0..<x.count, grain: 32_768) { r, _ in vscale(p + r.lowerBound, alpha, r.count) }
}

/// Concatenates along the channel dimension (`torch.cat([a, b], dim=1)`).
/// - Parameters:
///   - a: [N, Ca, ...spatial]
///   - b: [N, Cb, ...spatial]
///   - output: [N, Ca + Cb, ...spatial]
public func concatChannels(_ a: Tensor, _ b: Tensor, output: Tensor, pool: ThreadPool) {
    precondition(a.rank >= 2 && b.rank == a.rank && a.shape[0] == b.shape[0]
                 && Array(a.shape.dropFirst(2)) == Array(b.shape.dropFirst(2)),
                 "concatChannels: \(a.shape) and \(b.shape) differ outside dim 1")
    let n = a.shape[0]
    let aPer = a.count / max(n, 1), bPer = b.count / max(n, 1)
    precondition(output.count == a.count + b.count && output.shape[0] == n,
                 "concatChannels: output \(output.shape) is not [\(n), \(a.shape[1] + b.shape[1]), ...]")
    let pa = UnsafePointer(a.data), pb = UnsafePointer(b.data), po = output.data
    pool.parallelFor(0..<(2 * n)) { r, _ in
        for t in r {
            let i = t / 2
            let dst = po + i * (aPer + bPer)
            if t % 2 == 0 { dst.update(from: pa + i * aPer, count: aPer) }
            else { (dst + aPer).update(from: pb + i * bPer, count: bPer) }
        }
    }
}

/// Nearest-neighbour 2× upsampling (`F.interpolate(scale_factor=2, mode="nearest")`).
/// - Parameters:
///   - input: [N, C, H, W]
///   - output: [N, C, 2H, 2W]
public func upsampleNearest2x(_ input: Tensor, output: Tensor, pool: ThreadPool) {
    precondition(input.rank == 4, "upsampleNearest2x: input must be [N, C, H, W], got \(input.shape)")
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    precondition(output.shape == [n, c, 2 * h, 2 * w], "upsampleNearest2x: output \(output.shape) is not [\(n), \(c), \(2 * h), \(2 * w)]")
    let src = UnsafePointer(input.data), dst = output.data
    pool.parallelFor(0..<(n * c * h), grain: max(1, 4096 / max(w, 1))) { r, _ in
        for row in r {
            let s = src + row * w
            let d0 = dst + row * 4 * w   // output rows 2·row and 2·row + 1
            for x in 0..<w { let v = s[x]; d0[2 * x] = v; d0[2 * x + 1] = v }
            (d0 + 2 * w).update(from: d0, count: 2 * w)
        }
    }
}

/// Numerically stable softmax over the last dimension: e^(x − max) / Σ e^(x − max).
/// `output` may alias `input`.
public func softmax(_ input: Tensor, output: Tensor, pool: ThreadPool) {
    precondition(input.count == output.count, "softmax: \(input.shape) → \(output.shape)")
    let d = input.dim(-1)
    let rows = input.count / max(d, 1)
    let x = UnsafePointer(input.data), y = output.data
    pool.parallelFor(0..<rows, grain: max(1, 4096 / max(d, 1))) { r, _ in
        for row in r { softmaxRow(x + row * d, y + row * d, d) }
    }
}

/// Softmax of one row of n floats (`out` may alias `x`).
@inline(__always) public func softmaxRow(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    let m = vmax(x, n)
    if m == -.infinity { out.update(repeating: 0, count: n); return }
    let vm = VFloat(repeating: m)
    var acc = VFloat()
    var i = 0
    while i + 8 <= n { let e = vexp(vload(x, i) - vm); vstore(e, out, i); acc += e; i += 8 }
    var s = acc.sum()
    while i < n { let e = x[i] == -.infinity ? 0 : fastExp(x[i] - m); out[i] = e; s += e; i += 1 }
    vscale(out, 1 / s, n)
}

/// Sinusoidal timestep embedding, exactly diffusers `get_timestep_embedding`:
/// exponent_i = −ln(max_period)·i / (half − downscale_freq_shift), freq_i = e^exponent_i,
/// arg = scale·t·freq_i, emb = [sin(arg), cos(arg)] (or [cos, sin] if `flipSinToCos`),
/// zero-padded by one column when `dim` is odd. Computed in float32 like torch.
/// - Parameters:
///   - timesteps: one value per batch element
///   - output: [timesteps.count, dim]
public func timestepEmbedding(_ timesteps: [Float], dim: Int, flipSinToCos: Bool, downscaleFreqShift: Float,
                              scale: Float = 1, maxPeriod: Float = 10_000, output: Tensor) {
    precondition(output.count == timesteps.count * dim, "timestepEmbedding: output \(output.shape) is not [\(timesteps.count), \(dim)]")
    let half = dim / 2
    let out = output.data
    let logMax = Float(-log(Double(maxPeriod)))
    for (b, t) in timesteps.enumerated() {
        let row = out + b * dim
        for i in 0..<half {
            let exponent = logMax * Float(i) / (Float(half) - downscaleFreqShift)
            let arg = scale * (t * Foundation.exp(exponent))
            let s = Foundation.sin(arg), c = Foundation.cos(arg)
            if flipSinToCos { row[i] = c; row[half + i] = s } else { row[i] = s; row[half + i] = c }
        }
        if dim % 2 == 1 { row[dim - 1] = 0 }
    }
}
