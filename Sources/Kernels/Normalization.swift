/// Group normalization (`torch.nn.GroupNorm`): for each sample and each of `groups`
/// channel groups, normalize over (channels in group × spatial) with biased variance,
/// then y = x̂·γ[c] + β[c]; optionally followed by SiLU (diffusers ResnetBlock2D and the
/// VAE apply GroupNorm then SiLU back to back, so fusing saves a pass over memory).
/// - Parameters:
///   - input: [N, C, ...spatial]
///   - gamma, beta: [C] or nil (nil = no affine)
///   - output: same shape as input; may alias input
public func groupNorm(_ input: Tensor, groups: Int, gamma: Tensor?, beta: Tensor?, eps: Float,
                      silu: Bool = false, output: Tensor, pool: ThreadPool) {
    precondition(input.rank >= 2, "groupNorm: input must be [N, C, ...], got \(input.shape)")
    precondition(output.count == input.count, "groupNorm: output \(output.shape) vs input \(input.shape)")
    let n = input.shape[0], c = input.shape[1]
    precondition(groups >= 1 && c % groups == 0, "groupNorm: \(c) channels not divisible into \(groups) groups")
    if let gamma { precondition(gamma.count == c, "groupNorm: gamma \(gamma.shape) is not [\(c)]") }
    if let beta { precondition(beta.count == c, "groupNorm: beta \(beta.shape) is not [\(c)]") }
    let spatial = input.count / max(n * c, 1)
    let perGroup = c / groups
    let x = UnsafePointer(input.data), y = output.data
    let g = gamma.map { UnsafePointer($0.data) }, b = beta.map { UnsafePointer($0.data) }
    pool.parallelFor(0..<(n * groups)) { r, _ in
        for task in r {
            let c0 = (task % groups) * perGroup
            let base = (task / groups) * c * spatial + c0 * spatial
            let len = perGroup * spatial
            let (mean, rstd) = meanAndInverseStd(x + base, len, eps: eps)
            for ci in 0..<perGroup {
                let ch = c0 + ci
                let scale = (g?[ch] ?? 1) * rstd
                let shift = (b?[ch] ?? 0) - mean * scale
                scaleShift(x + base + ci * spatial, y + base + ci * spatial, spatial, scale: scale, shift: shift, silu: silu)
            }
        }
    }
}

/// Layer normalization over the last dimension (`torch.nn.LayerNorm(D)`), biased variance.
/// - Parameters:
///   - input: [..., D]
///   - gamma, beta: [D] or nil
///   - output: same shape; may alias input
public func layerNorm(_ input: Tensor, gamma: Tensor?, beta: Tensor?, eps: Float, output: Tensor,
                      pool: ThreadPool) {
    let d = input.dim(-1)
    precondition(output.count == input.count, "layerNorm: output \(output.shape) vs input \(input.shape)")
    if let gamma { precondition(gamma.count == d, "layerNorm: gamma \(gamma.shape) is not [\(d)]") }
    if let beta { precondition(beta.count == d, "layerNorm: beta \(beta.shape) is not [\(d)]") }
    let rows = input.count / max(d, 1)
    let x = UnsafePointer(input.data), y = output.data
    let g = gamma.map { UnsafePointer($0.data) }, b = beta.map { UnsafePointer($0.data) }
    pool.parallelFor(0..<rows, grain: max(1, 4096 / max(d, 1))) { r, _ in
        for row in r {
            let xi = x + row * d, yi = y + row * d
            let (mean, rstd) = meanAndInverseStd(xi, d, eps: eps)
            let vm = VFloat(repeating: mean), vr = VFloat(repeating: rstd)
            var i = 0
            while i + 8 <= d {
                var v = (vload(xi, i) - vm) * vr
                if let g { v *= vload(g, i) }
                if let b { v += vload(b, i) }
                vstore(v, yi, i)
                i += 8
            }
            while i < d {
                var v = (xi[i] - mean) * rstd
                if let g { v *= g[i] }
                if let b { v += b[i] }
                yi[i] = v
                i += 1
            }
        }
    }
}

/// Mean and 1/√(var + eps) of n floats, two passes (sum, then squared deviations), in chunks
/// of 4096 whose vector partial sums are folded into Double, so long groups (group norm's)
/// stay accurate. Each chunk sums on four 8-lane accumulators: one made each pass a chain of
/// dependent adds, four cycles a vector, most of a layer norm's time (0.9% of the text
/// encoder's).
@inline(__always)
func meanAndInverseStd(_ x: UnsafePointer<Float>, _ n: Int, eps: Float) -> (Float, Float) {
    /// Σ over i < n of the terms `add(acc, x[i…])` folds in, chunk by chunk: four partial sums
    /// (a, b, c, e) folded pairwise, `tail` adding the chunk's last floats' terms.
    @inline(__always) func total(_ add: (VFloat, VFloat) -> VFloat, _ tail: (Float, Float) -> Float) -> Double {
        var sum = 0.0
        var start = 0
        while start < n {
            let end = min(n, start + 4096)
            var a = VFloat(), b = VFloat(), c = VFloat(), e = VFloat()
            var i = start
            while i + 32 <= end {
                a = add(a, vload(x, i)); b = add(b, vload(x, i + 8))
                c = add(c, vload(x, i + 16)); e = add(e, vload(x, i + 24))
                i += 32
            }
            while i + 8 <= end { a = add(a, vload(x, i)); i += 8 }
            var s = ((a + b) + (c + e)).sum()
            while i < end { s = tail(s, x[i]); i += 1 }
            sum += Double(s)
            start = end
        }
        return sum
    }
    let mean = Float(total({ $0 + $1 }, { $0 + $1 }) / Double(max(n, 1)))
    let vm = VFloat(repeating: mean)
    let sq = total({ let d = $1 - vm; return $0.addingProduct(d, d) }, { let d = $1 - mean; return $0 + d * d })
    let variance = Float(sq / Double(max(n, 1)))
    return (mean, 1 / (variance + eps).squareRoot())
}

/// y = x·scale + shift, then SiLU if asked.
@inline(__always)
func scaleShift(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int,
                scale: Float, shift: Float, silu: Bool) {
    let vs = VFloat(repeating: scale), vb = VFloat(repeating: shift)
    var i = 0
    if silu {
        while i + 8 <= n { vstore(siluV(vb.addingProduct(vload(x, i), vs)), y, i); i += 8 }
    } else {
        while i + 8 <= n { vstore(vb.addingProduct(vload(x, i), vs), y, i); i += 8 }
    }
    while i < n {
        let v = shift.addingProduct(x[i], scale)
        y[i] = silu ? v / (1 + fastExp(-v)) : v
        i += 1
    }
}
