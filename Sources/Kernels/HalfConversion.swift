import Foundation

/// Conversions between float32 and the 16-bit float formats found in safetensors files.
/// Sources may be unaligned (safetensors only guarantees byte offsets), so they are read
/// as raw bytes. On x86_64 built for Haswell the `Float16` → `Float` conversion of a
/// `SIMD8` lowers to F16C `vcvtph2ps`.
public enum HalfConversion {
    /// IEEE half (F16, little-endian) → float32, `count` elements.
    public static func float16ToFloat32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        #if arch(x86_64) || arch(arm64)
        while i + 8 <= count {
            let bits = src.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<UInt16>.self)
            let h = unsafeBitCast(bits, to: SIMD8<Float16>.self)
            let f = SIMD8<Float>(h)
            UnsafeMutableRawPointer(dst + i).storeBytes(of: f, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            let b = src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
            dst[i] = Float(Float16(bitPattern: b))
            i += 1
        }
        #else
        while i < count {
            let b = src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
            dst[i] = halfBitsToFloat(b)
            i += 1
        }
        #endif
    }

    /// bfloat16 (BF16, little-endian) → float32: the 16 bits are the top half of a float32.
    public static func bfloat16ToFloat32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let bits = src.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<UInt16>.self)
            let wide = SIMD8<UInt32>(truncatingIfNeeded: bits) &<< 16
            UnsafeMutableRawPointer(dst + i).storeBytes(of: unsafeBitCast(wide, to: SIMD8<Float>.self), as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            let b = src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
            dst[i] = Float(bitPattern: UInt32(b) << 16)
            i += 1
        }
    }

    /// float32 → IEEE half (little-endian), `count` elements, rounding to nearest even
    /// (IEEE 754's default, torch's `.half()`): values past the half range become ±inf,
    /// tiny ones half subnormals or ±0, NaN stays NaN. `dst` may be unaligned. With F16C
    /// the vector loop is `vcvtps2ph`.
    /// `src` may be unaligned too (a float32 tensor in a mapped safetensors file).
    public static func float32ToFloat16(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, count: Int) {
        var i = 0
        #if arch(x86_64) || arch(arm64)
        while i + 8 <= count {
            let f = src.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let h = SIMD8<Float16>(f)
            dst.storeBytes(of: unsafeBitCast(h, to: SIMD8<UInt16>.self), toByteOffset: i * 2, as: SIMD8<UInt16>.self)
            i += 8
        }
        while i < count {
            let f = src.loadUnaligned(fromByteOffset: i * 4, as: Float.self)
            dst.storeBytes(of: Float16(f).bitPattern, toByteOffset: i * 2, as: UInt16.self)
            i += 1
        }
        #else
        preconditionFailure("Float16 unavailable on this architecture")
        #endif
    }

    /// Rounds `count` float32 values in place to the nearest IEEE half value (round to
    /// nearest even, ±inf past the range), keeping them float32: what a tensor holds after
    /// torch's `.half()` and back to float.
    public static func roundToFloat16(_ p: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        #if arch(x86_64) || arch(arm64)
        while i + 8 <= count {
            let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(p + i).storeBytes(of: SIMD8<Float>(SIMD8<Float16>(v)), as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            p[i] = Float(Float16(p[i]))
            i += 1
        }
        #else
        preconditionFailure("Float16 unavailable on this architecture")
        #endif
    }

    /// float32 → bfloat16 (little-endian), `count` elements, rounding to nearest even as
    /// torch's `c10::BFloat16` does (`round_to_nearest_even`); NaN becomes the quiet NaN 0x7FC0.
    public static func float32ToBFloat16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, count: Int) {
        for i in 0..<count {
            dst.storeBytes(of: bfloat16Bits(src[i]), toByteOffset: i * 2, as: UInt16.self)
        }
    }

    /// One float32 → bfloat16 bits, round to nearest even (torch's rule).
    @inline(__always) public static func bfloat16Bits(_ x: Float) -> UInt16 {
        if x.isNaN { return 0x7FC0 }
        let bits = x.bitPattern
        let rounding = UInt32(0x7FFF) &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    /// float32 → IEEE half bits (round to nearest even); used by tests and writers.
    public static func float32ToFloat16Bits(_ x: Float) -> UInt16 {
        #if arch(x86_64) || arch(arm64)
        return Float16(x).bitPattern
        #else
        preconditionFailure("Float16 unavailable on this architecture")
        #endif
    }

    /// Portable scalar decoding of IEEE half bits (reference for tests and non-x86 builds).
    public static func halfBitsToFloat(_ h: UInt16) -> Float {
        let sign: UInt32 = UInt32(h & 0x8000) << 16
        let exp = Int((h >> 10) & 0x1F)
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            // Zero or subnormal: mant × 2^-24.
            let v = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -v : v
        }
        if exp == 31 {
            return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13))
        }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
    }
}
