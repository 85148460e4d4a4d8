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
            let (mean, rstd) = rowMeanAndInverseStd(xi, d, eps: eps)
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

/// Mean and 1/√(var + eps) of one layer-norm row of n floats (a few hundred to a few
/// thousand), two passes (sum, then squared deviations), each with four vector accumulators:
/// one accumulator made each pass a chain of dependent adds, four cycles per vector, most
/// of the layer norm's time (0.9% of the text encoder's). Their total in Double, as
/// `meanAndInverseStd` does.
@inline(__always)
func rowMeanAndInverseStd(_ x: UnsafePointer<Float>, _ n: Int, eps: Float) -> (Float, Float) {
    /// Σ over i < n of the terms `add(acc, x[i…])` folds in: four 8-lane partial sums (a, b, c,
    /// e), folded pairwise; `tail` adds one float's term.
    @inline(__always) func total(_ add: (VFloat, VFloat) -> VFloat, _ tail: (Float, Float) -> Float) -> Double {
        var a = VFloat(), b = VFloat(), c = VFloat(), e = VFloat()
        var i = 0
        while i + 32 <= n {
            a = add(a, vload(x, i)); b = add(b, vload(x, i + 8))
            c = add(c, vload(x, i + 16)); e = add(e, vload(x, i + 24))
            i += 32
        }
        while i + 8 <= n { a = add(a, vload(x, i)); i += 8 }
        var s = ((a + b) + (c + e)).sum()
        while i < n { s = tail(s, x[i]); i += 1 }
        return Double(s)
    }
    let mean = Float(total({ $0 + $1 }, { $0 + $1 }) / Double(max(n, 1)))
    let vm = VFloat(repeating: mean)
    let sq = total({ let d = $1 - vm; return $0.addingProduct(d, d) }, { let d = $1 - mean; return $0 + d * d })
    let variance = Float(sq / Double(max(n, 1)))
    return (mean, 1 / (variance + eps).squareRoot())
}

/// Mean and 1/√(var + eps) of n floats, two passes (sum, then squared deviations) with
/// vector partial sums folded into Double so long groups stay accurate.
@inline(__always)
func meanAndInverseStd(_ x: UnsafePointer<Float>, _ n: Int, eps: Float) -> (Float, Float) {
    var total = 0.0
    var i = 0
    while i < n {
        let len = min(4096, n - i)
        total += Double(vsum(x + i, len))
        i += len
    }
    let mean = Float(total / Double(max(n, 1)))
    let vm = VFloat(repeating: mean)
    var sq = 0.0
    i = 0
    while i < n {
        let len = min(4096, n - i)
        var acc = VFloat()
        var j = 0
        while j + 8 <= len { let d = vload(x, i + j) - vm; acc.addProduct(d, d); j += 8 }
        var s = acc.sum()
        while j < len { let d = x[i + j] - mean; s += d * d; j += 1 }
        sq += Double(s)
        i += len
    }
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
