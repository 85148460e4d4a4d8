import KernelsAVX512

/// The fused multiply-add ceiling of one core: `steps` steps of independent FMA chains at
/// the widest vectors the kernels use (16 lanes where the AVX-512 kernels run, else 8), and
/// nothing else. Returns the floating-point operations done and a value that depends on
/// every chain (keep it, so the loop is not optimized away). `diffusion-bench kernels`
/// reports it as "fma peak", the rate the other kernels' GFLOP/s are read against.
public func fmaPeak(steps: Int) -> (flops: Double, sink: Float) {
    #if arch(x86_64)
    if CPUFeatures.useAVX512Kernels {
        return (Double(steps * AVX512FMAPeak.flopsPerStep), AVX512FMAPeak.run(steps: steps))
    }
    #endif
    let b = VFloat(repeating: 0.999_999), c = VFloat(repeating: 1e-7)
    var a0 = VFloat(repeating: 1), a1 = VFloat(repeating: 1.01), a2 = VFloat(repeating: 1.02)
    var a3 = VFloat(repeating: 1.03), a4 = VFloat(repeating: 1.04), a5 = VFloat(repeating: 1.05)
    var a6 = VFloat(repeating: 1.06), a7 = VFloat(repeating: 1.07), a8 = VFloat(repeating: 1.08)
    var a9 = VFloat(repeating: 1.09), a10 = VFloat(repeating: 1.1), a11 = VFloat(repeating: 1.11)
    for _ in 0..<steps {
        a0 = c.addingProduct(a0, b); a1 = c.addingProduct(a1, b); a2 = c.addingProduct(a2, b)
        a3 = c.addingProduct(a3, b); a4 = c.addingProduct(a4, b); a5 = c.addingProduct(a5, b)
        a6 = c.addingProduct(a6, b); a7 = c.addingProduct(a7, b); a8 = c.addingProduct(a8, b)
        a9 = c.addingProduct(a9, b); a10 = c.addingProduct(a10, b); a11 = c.addingProduct(a11, b)
    }
    let s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11))
    return (Double(steps * 12 * vectorWidth * 2), s.sum())
}
