import KernelsAVX512
import Foundation

/// Pointwise nonlinearities, vectorized with `vexp`; each has a scalar-tail path so any
/// length works. All accept `output` aliasing `input` (in place).
public enum Activation: String, Sendable, CaseIterable {
    /// x·σ(x) (`torch.nn.SiLU`, "silu"/"swish").
    case silu
    /// 0.5·x·(1 + erf(x/√2)), torch's default exact GELU ("gelu").
    case gelu
    /// 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) (`approximate="tanh"`, "gelu_pytorch_tanh").
    case geluTanh
    /// x·σ(1.702x) (CLIP's "quick_gelu").
    case quickGelu
    /// max(x, 0) (`torch.nn.ReLU`, "relu"; TAESD / diffusers `AutoencoderTiny`). NaN stays NaN.
    case relu

    /// The activation named by a diffusers/transformers config (`act_fn`, `hidden_act`).
    public init?(configName: String) {
        switch configName {
        case "silu", "swish": self = .silu
        case "gelu": self = .gelu
        case "gelu_pytorch_tanh", "gelu_new", "gelu_tanh": self = .geluTanh
        case "quick_gelu": self = .quickGelu
        case "relu": self = .relu
        default: return nil
        }
    }

    /// The activation on 8 lanes.
    @inline(__always) public func apply(_ x: VFloat) -> VFloat {
        switch self {
        case .silu: return siluV(x)
        case .gelu: return geluV(x)
        case .geluTanh: return geluTanhV(x)
        case .quickGelu: return x / (VFloat(repeating: 1) + vexp(x * VFloat(repeating: -1.702)))
        case .relu: return x.replacing(with: VFloat(repeating: 0), where: x .< VFloat(repeating: 0))
        }
    }

    /// out[i] = f(x[i]) for i < n, on the calling thread.
    @inline(__always) public func apply(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { vstore(apply(vload(x, i)), out, i); i += 8 }
        if i < n {
            var t = VFloat()
            for j in 0..<(n - i) { t[j] = x[i + j] }
            let y = apply(t)
            for j in 0..<(n - i) { out[i + j] = y[j] }
        }
    }
}

/// x·σ(x) = x / (1 + e^(−x)).
@inline(__always) public func siluV(_ x: VFloat) -> VFloat {
    x / (VFloat(repeating: 1) + vexp(-x))
}

/// erf(z) for z ≥ 0 as 1 − q with q = poly(t)·e^(−z²), t = 1/(1 + p·z):
/// Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7. Returns q (so callers avoid cancellation).
@inline(__always) func erfcComplementV(_ z: VFloat) -> VFloat {
    let t = VFloat(repeating: 1) / VFloat(repeating: 1).addingProduct(z, VFloat(repeating: 0.327_591_1))
    var p = VFloat(repeating: 1.061_405_429)
    p = VFloat(repeating: -1.453_152_027).addingProduct(p, t)
    p = VFloat(repeating: 1.421_413_741).addingProduct(p, t)
    p = VFloat(repeating: -0.284_496_736).addingProduct(p, t)
    p = VFloat(repeating: 0.254_829_592).addingProduct(p, t)
    return p * t * vexp(-(z * z))
}

/// Exact (erf) GELU on 8 lanes: 0.5·x·(1 + erf(x/√2)).
@inline(__always) public func geluV(_ x: VFloat) -> VFloat {
    let absX = unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & SIMD8<UInt32>(repeating: 0x7FFF_FFFF), to: VFloat.self)
    let z = absX * VFloat(repeating: 0.707_106_781_186_547_5)
    let q = erfcComplementV(z)            // erfc(|x|/√2)
    // x ≥ 0: 1 + erf = 2 − q;  x < 0: 1 + erf = q.
    let onePlusErf = (VFloat(repeating: 2) - q).replacing(with: q, where: x .< 0)
    return VFloat(repeating: 0.5) * x * onePlusErf
}

/// tanh-approximate GELU on 8 lanes, tanh(y) = 1 − 2/(1 + e^(2y)).
@inline(__always) public func geluTanhV(_ x: VFloat) -> VFloat {
    let inner = x.addingProduct(VFloat(repeating: 0.044_715) * x, x * x) * VFloat(repeating: 0.797_884_560_802_865_4)
    let th = VFloat(repeating: 1) - VFloat(repeating: 2) / (VFloat(repeating: 1) + vexp(inner + inner))
    return VFloat(repeating: 0.5) * x * (VFloat(repeating: 1) + th)
}

/// Applies `activation` elementwise over all of `input` into `output` (same count; may alias).
public func activate(_ activation: Activation, _ input: Tensor, output: Tensor, pool: ThreadPool) {
    precondition(input.count == output.count, "activate: \(input.shape) into \(output.shape)")
    activate(activation, UnsafePointer(input.data), output.data, count: input.count, pool: pool)
}

/// Pointer form of `activate`: y[i] = f(x[i]) for i < count (x and y may be the same).
public func activate(_ activation: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                     pool: ThreadPool) {
    pool.parallelFor(0..<count, grain: 16_384) { r, _ in
        activation.apply(x + r.lowerBound, y + r.lowerBound, r.count)
    }
}

/// diffusers `GEGLU` after its projection: the last dim (2·D) is split in halves
/// (hidden, gate) and the result is hidden · gelu(gate) (exact erf GELU).
/// - Parameters:
///   - input: [..., 2·D]
///   - output: [..., D]
public func geglu(_ input: Tensor, output: Tensor, pool: ThreadPool) {
    let twoD = input.dim(-1)
    precondition(twoD % 2 == 0, "geglu: last dim \(twoD) is odd")
    let d = twoD / 2
    let rows = input.count / max(twoD, 1)
    precondition(output.count == rows * d && output.dim(-1) == d, "geglu: output \(output.shape) is not [..., \(d)]")
    let x = UnsafePointer(input.data), y = output.data
    pool.parallelFor(0..<rows, grain: max(1, 8192 / max(d, 1))) { r, _ in
        for row in r {
            let h = x + row * twoD, g = h + d, o = y + row * d
            var i = 0
            #if arch(x86_64)
            if CPUFeatures.useAVX512Kernels { i = AVX512GEGLU.gate(h, g, o, d) }   // the same bits
            #endif
            while i + 8 <= d { vstore(vload(h, i) * geluV(vload(g, i)), o, i); i += 8 }
            if i < d {
                var tg = VFloat(), th = VFloat()
                for j in 0..<(d - i) { tg[j] = g[i + j]; th[j] = h[i + j] }
                let v = th * geluV(tg)
                for j in 0..<(d - i) { o[i + j] = v[j] }
            }
        }
    }
}
