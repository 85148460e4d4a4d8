/// torch's CUDA generator: `torch.randn(n, device="cuda", generator=g)` after
/// `g.manual_seed(seed)` (AUTOMATIC1111's default seeds), reproduced bit for bit on the CPU.
///
/// ATen's `normal_kernel` (aten/src/ATen/native/cuda/DistributionTemplates.h) launches
/// `distribution_elementwise_grid_stride_kernel` with `curand_normal4`: thread `idx` does
/// `curand_init(seed, idx, offset)`, i.e. Philox 4x32-10 keyed by the seed with counter
/// `(offset / 4, 0, idx, 0)`, and element `idx` receives the first of the four values,
/// `_curand_box_muller(x0, x1).x` (the sine branch; see `PhiloxCUDAMath`). Each call
/// advances the generator's Philox offset by 4 (`curand4_engine_calls`), one counter step.
///
/// Exact while `n` does not exceed the launch's thread count (256 x blocks, 1056 blocks on an
/// H100: n <= 270,336, e.g. every latent up to 1024x1024); beyond it CUDA hands threads the
/// cos and second-pair values in a grid-stride layout that depends on the GPU's SM count,
/// which this generator does not model (it continues with one counter per element, as
/// AUTOMATIC1111's `rng_philox.py` does).
public final class PhiloxGenerator: NoiseGenerator {
    public let seed: UInt64
    /// Number of `fillNormal` calls so far (the first counter word: Philox offset / 4).
    public private(set) var offset: UInt32 = 0

    private static let multiplier0: UInt32 = 0xD251_1F53
    private static let multiplier1: UInt32 = 0xCD9E_8D57
    private static let weyl0: UInt32 = 0x9E37_79B9
    private static let weyl1: UInt32 = 0xBB67_AE85

    public init(seed: UInt64) {
        self.seed = seed
    }

    /// Philox 4x32 with 10 rounds (Salmon et al. 2011); returns the first two output words.
    static func philox(counter: (UInt32, UInt32, UInt32, UInt32), key: UInt64) -> (UInt32, UInt32) {
        var (c0, c1, c2, c3) = counter
        var k0 = UInt32(truncatingIfNeeded: key)
        var k1 = UInt32(truncatingIfNeeded: key >> 32)
        for round in 0..<10 {
            let product0 = UInt64(c0) &* UInt64(multiplier0)
            let product1 = UInt64(c2) &* UInt64(multiplier1)
            let next0 = UInt32(truncatingIfNeeded: product1 >> 32) ^ c1 ^ k0
            let next2 = UInt32(truncatingIfNeeded: product0 >> 32) ^ c3 ^ k1
            c1 = UInt32(truncatingIfNeeded: product1)
            c3 = UInt32(truncatingIfNeeded: product0)
            c0 = next0
            c2 = next2
            if round < 9 {
                k0 = k0 &+ weyl0
                k1 = k1 &+ weyl1
            }
        }
        return (c0, c1)
    }

    public func fillNormal(_ out: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<out.count {
            let (x, y) = Self.philox(counter: (offset, 0, UInt32(truncatingIfNeeded: i), 0), key: seed)
            out[i] = PhiloxCUDAMath.boxMullerSine(x, y)
        }
        offset &+= 1
    }
}
