/// The float arithmetic of curand's `_curand_box_muller` (curand_normal.h) as an NVIDIA GPU
/// executes it, reproduced bit for bit on the CPU:
///
///     u = fmaf(float(x), 2^-32, 2^-33)            // nvcc contracts x * INV + INV/2
///     v = fmaf(float(y), 2^-32 * 2pi, 2^-33 * 2pi)
///     s = sqrtf(-2 * logf(u))                     // libdevice __nv_logf, IEEE sqrt
///     __sincosf(v, &sin, &cos)                    // MUFU.SIN / MUFU.COS
///     result = (sin * s, cos * s)
enum PhiloxCUDAMath {
    /// curand's `CURAND_2POW32_INV` and `CURAND_2POW32_INV_2PI` (float constants).
    static let twoPow32Inverse: Float = 2.3283064e-10
    static let twoPow32InverseTwoPi: Float = Float(2.3283064e-10) * Float(6.2831855)

    /// The first Box–Muller output (`result.x`) for the Philox words `x` and `y`.
    static func boxMullerSine(_ x: UInt32, _ y: UInt32) -> Float {
        let u = (twoPow32Inverse / 2).addingProduct(Float(x), twoPow32Inverse)
        let v = (twoPow32InverseTwoPi / 2).addingProduct(Float(y), twoPow32InverseTwoPi)
        let radius = (-2 * libdeviceLog(u)).squareRoot()
        return sfuSine(v) * radius
    }

    /// `__nv_logf` from CUDA's libdevice (the instruction sequence nvcc inlines for `logf`):
    /// reduce to m in [2/3, 4/3) by subtracting the exponent of 2/3's bit pattern, evaluate a
    /// degree-9 polynomial for log1p(m - 1) by Horner with FMA, add e * ln 2. Valid for
    /// positive finite inputs (Box–Muller's u lies in (0, 1]).
    static func libdeviceLog(_ input: Float) -> Float {
        var a = input
        var exponentBias: Float = 0
        if a < Float.leastNormalMagnitude {
            a *= 8_388_608  // 2^23: make a subnormal normal
            exponentBias = -23
        }
        let bits = Int32(bitPattern: a.bitPattern)
        let exponentBits = (bits &- 0x3F2A_AAAB) & Int32(bitPattern: 0xFF80_0000)
        let mantissa = Float(bitPattern: UInt32(bitPattern: bits &- exponentBits))
        let exponent = exponentBias.addingProduct(Float(exponentBits), Float(bitPattern: 0x3400_0000))  // 2^-23
        let f = mantissa - 1
        var p = Float(bitPattern: 0x3E10_39F6).addingProduct(Float(bitPattern: 0xBE05_5027), f)
        for coefficient: UInt32 in [0xBDF8_CDCC, 0x3E0F_2955, 0xBE2A_D8B9, 0x3E4C_ED0B,
                                    0xBE7F_FF22, 0x3EAA_AA78, 0xBF00_0000] {
            p = Float(bitPattern: coefficient).addingProduct(p, f)
        }
        p = f * p
        p = f.addingProduct(p, f)
        return p.addingProduct(exponent, Float(bitPattern: 0x3F31_7218))  // ln 2
    }

    /// `__sinf(v)` on sm_70+: `FMUL.RZ t = v * 1/(2pi)` then MUFU.SIN on t (in turns). The
    /// unit takes the angle as a 2.23 fixed-point number of quarter turns (truncated), mirrors
    /// it into the first quadrant and evaluates a per-slice quadratic A + B r + C r^2 from
    /// `PhiloxSineTable` in fixed point, truncating to a float. Valid for finite v >= 0.
    static func sfuSine(_ v: Float) -> Float {
        let turns = productTowardZero(v, Float(bitPattern: 0x3E22_F983))  // 1/(2pi)
        let fixed = UInt64(Double(turns) * 33_554_432)  // 2^25: quarter turns as 2.23, truncated
        let quadrant = UInt32(truncatingIfNeeded: fixed >> 23) & 3
        var fraction = UInt32(truncatingIfNeeded: fixed) & 0x7F_FFFF
        if quadrant & 1 == 1 { fraction = ~fraction & 0x7F_FFFF }  // sin(pi/2 + a) = sin(pi/2 - a)
        let negative = quadrant & 2 != 0  // sin(pi + a) = -sin(a)
        let row = PhiloxSineTable.rows[Int(fraction >> 17)]
        let r = Int64(fraction & 0x1_FFFF)
        var sum = (row.0 << 11) + row.1 * r + row.2 * Int64(sfuSquare(UInt32(r)))
        guard sum > 0 else { return negative ? -0.0 : 0.0 }
        // Normalize the 38-bit fixed-point result (bit 37 = 1.0) and truncate to 24 bits.
        var exponent: UInt32 = 0x7F
        while sum & (1 << 37) == 0 {
            sum <<= 1
            exponent -= 1
        }
        let significand = UInt32(truncatingIfNeeded: sum >> 14) & 0x7F_FFFF
        let magnitude = Float(bitPattern: exponent << 23 | significand)
        return negative ? -magnitude : magnitude
    }

    /// r^2 / 2^18 of a 17-bit r as the unit's truncated squarer forms it: each set bit i of r
    /// adds r >> (18 - i), dropping the low partial-product bits, then one more halving.
    static func sfuSquare(_ r: UInt32) -> UInt32 {
        var total: UInt32 = 0
        for bit in 0..<17 where r & (1 << bit) != 0 {
            total &+= r >> (18 - bit)
        }
        return total >> 1
    }

    /// a * b rounded toward zero (the exact product of two floats fits a double).
    static func productTowardZero(_ a: Float, _ b: Float) -> Float {
        let exact = Double(a) * Double(b)
        let nearest = Float(exact)
        guard Double(nearest).magnitude > exact.magnitude else { return nearest }
        return nearest > 0 ? nearest.nextDown : nearest.nextUp
    }
}
