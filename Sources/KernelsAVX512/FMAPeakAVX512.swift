// The fused multiply-add ceiling of one core at 16 lanes, for `diffusion-bench kernels`
// ("fma peak"): the rate the other kernels' GFLOP/s are read against.

#if arch(x86_64)
/// Independent chains of 16-lane FMAs, nothing else.
public enum AVX512FMAPeak {
    /// Floating-point operations of one `run` step: 12 chains × 16 lanes × 2.
    public static let flopsPerStep = 12 * 16 * 2

    /// Runs `steps` steps of 12 independent 16-lane FMA chains (enough to cover the FMA
    /// latency of both FMA ports) and returns a sum of them all, so none is left out.
    public static func run(steps: Int) -> Float {
        let b = V16(repeating: 0.999_999), c = V16(repeating: 1e-7)
        var a0 = V16(repeating: 1), a1 = V16(repeating: 1.01), a2 = V16(repeating: 1.02), a3 = V16(repeating: 1.03)
        var a4 = V16(repeating: 1.04), a5 = V16(repeating: 1.05), a6 = V16(repeating: 1.06), a7 = V16(repeating: 1.07)
        var a8 = V16(repeating: 1.08), a9 = V16(repeating: 1.09), a10 = V16(repeating: 1.1), a11 = V16(repeating: 1.11)
        for _ in 0..<steps {
            a0 = c.addingProduct(a0, b); a1 = c.addingProduct(a1, b); a2 = c.addingProduct(a2, b)
            a3 = c.addingProduct(a3, b); a4 = c.addingProduct(a4, b); a5 = c.addingProduct(a5, b)
            a6 = c.addingProduct(a6, b); a7 = c.addingProduct(a7, b); a8 = c.addingProduct(a8, b)
            a9 = c.addingProduct(a9, b); a10 = c.addingProduct(a10, b); a11 = c.addingProduct(a11, b)
        }
        let s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11))
        return s.sum()
    }
}
#endif
