/// Port of AUTOMATIC1111's `modules/rng_philox.py`, which reproduces
/// `torch.randn(..., device="cuda")` from `torch.manual_seed(seed)` on the CPU:
/// Philox 4x32-10 keyed by the 64-bit seed, counter `(offset, 0, index, 0)`, one Box–Muller
/// value per counter from the first two output words, computed in double and rounded to
/// float like the numpy reference does. Every `fillNormal` call advances `offset` by one,
/// as A1111's `Generator.randn` does.
///
/// Bit-exact to A1111's algorithm; against real `torch.randn(device="cuda")` (H100,
/// torch 2.11) the values agree to about 1e-6 relative, including consecutive calls, but not
/// bit for bit: CUDA evaluates Box–Muller with its float intrinsics.
public final class PhiloxGenerator: NoiseGenerator {
    public let seed: UInt64
    /// Number of `fillNormal` calls so far (the first counter word).
    public private(set) var offset: UInt32 = 0

    private static let multiplier0: UInt32 = 0xD251_1F53
    private static let multiplier1: UInt32 = 0xCD9E_8D57
    private static let weyl0: UInt32 = 0x9E37_79B9
    private static let weyl1: UInt32 = 0xBB67_AE85
    // float32(2.3283064e-10) and float32(2.3283064e-10 * 6.2831855), widened to double.
    private static let twoPow32Inverse = Double(Float(2.3283064e-10))
    private static let twoPow32InverseTwoPi = Double(Float(2.3283064e-10 * 6.2831855))

    public init(seed: UInt64) {
        self.seed = seed
    }

    /// Philox 4x32 with 10 rounds; returns the first two output words.
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
            let u = Double(x) * Self.twoPow32Inverse + Self.twoPow32Inverse / 2
            let v = Double(y) * Self.twoPow32InverseTwoPi + Self.twoPow32InverseTwoPi / 2
            let radius = (-2.0 * log(u)).squareRoot()
            out[i] = Float(radius * sin(v))
        }
        offset &+= 1
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
