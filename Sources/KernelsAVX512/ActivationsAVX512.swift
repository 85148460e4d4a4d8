// The AVX-512 build of GEGLU's gate (Kernels' Activations.swift has `geluV`, `erfcComplementV`
// and `geglu`, and the contract): the same operations in the same order at 16 lanes, so the
// same bits (AVX512KernelTests checks it).
//
// Why: the gate pass is about 1% of an SD 1.5 UNet evaluation (16.5 ms at 512², batch 1), its
// erf polynomial and exponential at 8 lanes.

#if arch(x86_64)
/// GEGLU's gate for CPUs with AVX-512 (F, CD, BW, DQ, VL).
public enum AVX512GEGLU {
    /// out[i] = h[i]·GELU(g[i]) (exact erf GELU) for i < n, 16 at a time; returns how many it
    /// did (a multiple of 16: Kernels does the rest).
    public static func gate(_ h: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                            _ n: Int) -> Int {
        var i = 0
        while i + 16 <= n {
            store16(load16(h + i) * gelu16(load16(g + i)), out + i)
            i += 16
        }
        return i
    }

    /// GELU(x) at 16 lanes (`geluV`'s operations), for tests.
    public static func gelu(_ x: SIMD16<Float>) -> SIMD16<Float> { gelu16(x) }
}

/// Kernels' `geluV` at 16 lanes: 0.5·x·(1 + erf(x/√2)), erf from Abramowitz & Stegun 7.1.26
/// (`erfcComplementV`) with `exp16` (`vexp`'s bits).
@inline(__always)
private func gelu16(_ x: V16) -> V16 {
    let absX = unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & SIMD16<UInt32>(repeating: 0x7FFF_FFFF), to: V16.self)
    let z = absX * V16(repeating: 0.707_106_781_186_547_5)
    let t = V16(repeating: 1) / V16(repeating: 1).addingProduct(z, V16(repeating: 0.327_591_1))
    var p = V16(repeating: 1.061_405_429)
    p = V16(repeating: -1.453_152_027).addingProduct(p, t)
    p = V16(repeating: 1.421_413_741).addingProduct(p, t)
    p = V16(repeating: -0.284_496_736).addingProduct(p, t)
    p = V16(repeating: 0.254_829_592).addingProduct(p, t)
    let q = p * t * exp16(-(z * z))
    let onePlusErf = (V16(repeating: 2) - q).replacing(with: q, where: x .< 0)
    return V16(repeating: 0.5) * x * onePlusErf
}
#endif
