// The one place that fixes the SIMD vector width and the arithmetic primitives every
// kernel builds on. Each primitive runs full vectors and then a scalar tail, so any
// length works. Built with -target-cpu haswell, SIMD8<Float> is one AVX2 register and
// `addingProduct` is one FMA (note `a*b+c` is *not* fused by the compiler).

/// The vector type kernels use: 8 floats, one AVX2 register.
public typealias VFloat = SIMD8<Float>
/// Lanes in `VFloat`.
public let vectorWidth = 8

/// Loads 8 floats from `p + i` (no alignment needed).
@inline(__always) public func vload(_ p: UnsafePointer<Float>, _ i: Int) -> VFloat {
    UnsafeRawPointer(p + i).loadUnaligned(as: VFloat.self)
}
/// Loads 8 floats from `p + i` (no alignment needed).
@inline(__always) public func vload(_ p: UnsafeMutablePointer<Float>, _ i: Int) -> VFloat {
    UnsafeRawPointer(p + i).loadUnaligned(as: VFloat.self)
}
/// Stores 8 floats at `p + i` (no alignment needed).
@inline(__always) public func vstore(_ v: VFloat, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: VFloat.self)
}

/// Lane-wise maximum. (The standard library's generic `pointwiseMax` is not inlined
/// and costs a call per vector; a compare-and-blend lowers to one or two instructions.)
@inline(__always) public func vmaxLanes(_ a: VFloat, _ b: VFloat) -> VFloat { a.replacing(with: b, where: a .< b) }
/// Lane-wise minimum (see `vmaxLanes`).
@inline(__always) public func vminLanes(_ a: VFloat, _ b: VFloat) -> VFloat { a.replacing(with: b, where: b .< a) }

/// Σ a[i]·b[i].
@inline(__always) public func vdot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = VFloat(), acc1 = VFloat()
    var i = 0
    while i + 16 <= n {
        acc0.addProduct(vload(a, i), vload(b, i))
        acc1.addProduct(vload(a, i + 8), vload(b, i + 8))
        i += 16
    }
    if i + 8 <= n { acc0.addProduct(vload(a, i), vload(b, i)); i += 8 }
    var s = (acc0 + acc1).sum()
    while i < n { s = s.addingProduct(a[i], b[i]); i += 1 }
    return s
}

/// y[i] += alpha·x[i].
@inline(__always) public func vaxpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    let va = VFloat(repeating: alpha)
    var i = 0
    while i + 8 <= n { vstore(vload(y, i).addingProduct(va, vload(x, i)), y, i); i += 8 }
    while i < n { y[i] = y[i].addingProduct(alpha, x[i]); i += 1 }
}

/// x[i] = 0 for i < n with vector stores: for short rows (an attention output row of 40–160
/// floats, zeroed per query), where a `memset` call cost more than the stores.
@inline(__always) public func vzero(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + 8 <= n { vstore(VFloat(), x, i); i += 8 }
    while i < n { x[i] = 0; i += 1 }
}

/// x[i] *= alpha (in place).
@inline(__always) public func vscale(_ x: UnsafeMutablePointer<Float>, _ alpha: Float, _ n: Int) {
    let va = VFloat(repeating: alpha)
    var i = 0
    while i + 8 <= n { vstore(vload(x, i) * va, x, i); i += 8 }
    while i < n { x[i] *= alpha; i += 1 }
}

/// out[i] = a[i] + b[i]; `out` may alias `a` or `b`.
@inline(__always) public func vadd(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + 8 <= n { vstore(vload(a, i) + vload(b, i), out, i); i += 8 }
    while i < n { out[i] = a[i] + b[i]; i += 1 }
}

/// Σ x[i].
@inline(__always) public func vsum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = VFloat()
    var i = 0
    while i + 8 <= n { acc += vload(x, i); i += 8 }
    var s = acc.sum()
    while i < n { s += x[i]; i += 1 }
    return s
}

/// max x[i] (−∞ for n = 0). Kept out of line on purpose: inlined into the attention loop,
/// LLVM re-vectorized this reduction into a slow shuffle sequence.
@inline(never) public func vmax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = VFloat(repeating: -.infinity)
    var i = 0
    while i + 8 <= n { acc = vmaxLanes(acc, vload(x, i)); i += 8 }
    var m = acc.max()
    while i < n { m = Swift.max(m, x[i]); i += 1 }
    return m
}

/// Fast e^x for 8 lanes: Cody–Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2, and
/// Cephes `expf`'s degree-6 polynomial for e^r (≈1 ulp over the normal range). Inputs
/// are clamped to [−87.3, 88.3], so very negative x gives ~1e-38 rather than 0.
@inline(__always) public func vexp(_ x: VFloat) -> VFloat {
    let xc = vminLanes(vmaxLanes(x, VFloat(repeating: -87.3)), VFloat(repeating: 88.3))
    // Round x·log2(e) to nearest by the 1.5·2^23 magic-number trick.
    let magic = VFloat(repeating: 12_582_912)
    let nMagic = magic.addingProduct(xc, VFloat(repeating: 1.442_695_04))
    let n = nMagic - magic
    // r = x − n·ln2, with ln2 split in two parts so the product is exact (Cody–Waite).
    var r = xc.addingProduct(n, VFloat(repeating: -0.693_359_375))
    r = r.addingProduct(n, VFloat(repeating: 2.121_944_4e-4))
    var p = VFloat(repeating: 1.987_569_15e-4)
    p = VFloat(repeating: 1.398_199_95e-3).addingProduct(p, r)
    p = VFloat(repeating: 8.333_451_9e-3).addingProduct(p, r)
    p = VFloat(repeating: 4.166_579_59e-2).addingProduct(p, r)
    p = VFloat(repeating: 1.666_666_55e-1).addingProduct(p, r)
    p = VFloat(repeating: 5.000_000_12e-1).addingProduct(p, r)
    let r2 = r * r
    let y = (r + VFloat(repeating: 1)).addingProduct(p, r2)
    // 2^n: the integer n sits in the low mantissa bits of nMagic.
    let nBits = unsafeBitCast(nMagic, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let pow2 = unsafeBitCast((nBits &+ 127) &<< 23, to: VFloat.self)
    return y * pow2
}

/// Scalar version of `vexp` with the same polynomial (used for tails).
@inline(__always) public func fastExp(_ x: Float) -> Float {
    vexp(VFloat(repeating: x))[0]
}

/// out[i] = e^(x[i]); `out` may alias `x`.
@inline(__always) public func vexp(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + 8 <= n { vstore(vexp(vload(x, i)), out, i); i += 8 }
    if i < n {
        var tmp = VFloat()
        for j in 0..<(n - i) { tmp[j] = x[i + j] }
        let e = vexp(tmp)
        for j in 0..<(n - i) { out[i + j] = e[j] }
    }
}
