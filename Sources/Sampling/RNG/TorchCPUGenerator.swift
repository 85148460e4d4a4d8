/// Bit-exact port of torch's CPU generator (`CPUGeneratorImpl`) as
/// `torch.Generator("cpu").manual_seed(seed)` + `torch.randn(..., dtype=torch.float32)` uses it
/// on x86 CPUs with AVX2 or AVX512 (torch's `normal_kernel` in
/// `aten/src/ATen/native/cpu/DistributionTemplates.h`):
///
/// - fewer than 16 values: element by element through `normal_distribution<double>`
///   (two 53-bit uniforms, `r = sqrt(-2 log1p(-u2))`, `theta = 2 pi u1`, returns `r cos`,
///   caches `r sin` for the next draw), rounded to float;
/// - 16 or more: `normal_fill_AVX2`: fill all values with 24-bit uniforms first, then
///   Box–Muller in place over blocks of 16 (pairs `j`, `j + 8`) with the Cephes float
///   functions of `avx_mathfun.h`; when the count is not a multiple of 16 the last 16
///   values are redrawn and transformed again.
///
/// Leaves out: torch's non-AVX2 fallback (`ATEN_CPU_CAPABILITY=default`, libm float
/// functions), which gives different last bits on such machines.
public final class TorchCPUGenerator: NoiseGenerator {
    public let seed: UInt64
    private var engine: MersenneTwister
    /// `next_double_normal_sample_`: the sine half of the last scalar Box–Muller pair.
    private var cachedDoubleNormal: Double?

    public init(seed: UInt64) {
        self.seed = seed
        self.engine = MersenneTwister(seed: seed)
    }

    /// `uniform_real_distribution<float>(0, 1)`: 24 random bits times 2^-24.
    private func uniformFloat() -> Float {
        Float(engine.next() & 0x00FF_FFFF) * 0x1p-24
    }

    /// `uniform_real_distribution<double>(0, 1)`: 53 random bits times 2^-53.
    private func uniformDouble() -> Double {
        Double(engine.next64() & ((1 << 53) - 1)) * 0x1p-53
    }

    /// `normal_distribution<double>(0, 1)` with torch's one-value cache.
    private func scalarNormal() -> Double {
        if let cached = cachedDoubleNormal {
            cachedDoubleNormal = nil
            return cached
        }
        let u1 = uniformDouble()
        let u2 = uniformDouble()
        let radius = (-2.0 * Double.log(onePlus: -u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedDoubleNormal = radius * sin(theta)
        return radius * cos(theta)
    }

    /// `normal_fill_16_AVX2` on `data[0..<16]` holding uniforms (mean 0, std 1).
    private static func boxMuller16(_ data: UnsafeMutablePointer<Float>) {
        // _mm256_set1_ps(2.0f * c10::pi<double>): the product is taken in double.
        let twoPi = Float(2.0 * Double.pi)
        for j in 0..<8 {
            let u1 = 1 - data[j]
            let u2 = data[j + 8]
            let radius = (-2 * CephesFloatMath.log(u1)).squareRoot()
            let (sine, cosine) = CephesFloatMath.sinCos(twoPi * u2)
            data[j] = radius * cosine
            data[j + 8] = radius * sine
        }
    }

    public func fillNormal(_ out: UnsafeMutableBufferPointer<Float>) {
        guard let base = out.baseAddress else { return }
        let count = out.count
        if count < 16 {
            for i in 0..<count { base[i] = Float(scalarNormal()) }
            return
        }
        for i in 0..<count { base[i] = uniformFloat() }
        var start = 0
        while start + 16 <= count {
            Self.boxMuller16(base + start)
            start += 16
        }
        if count % 16 != 0 {
            let tail = base + (count - 16)
            for i in 0..<16 { tail[i] = uniformFloat() }
            Self.boxMuller16(tail)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private extension Double {
    static func log(onePlus x: Double) -> Double { log1p(x) }
}
