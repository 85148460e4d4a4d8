/// Scalar ports of `log256_ps` and `sincos256_ps` from torch's
/// `aten/src/ATen/native/cpu/avx_mathfun.h` (Cephes polynomials by way of
/// Pommier's sse_mathfun), which torch's AVX2/AVX512 `normal_fill_16_AVX2` uses.
///
/// Bit-exactness depends on where GCC contracts `mul` + `add` into FMA when it builds
/// torch (`-ffp-contract=fast`): a product whose only use is an add/sub is fused into it,
/// the first product in statement order winning when both operands of an add are products.
/// Each `addingProduct` below marks one such contraction; plain `*` marks a product that
/// torch rounds separately. Not valid for denormal, negative or non-finite inputs, which
/// Box–Muller never passes (its inputs lie in (0, 1] and [0, 2π)).
enum CephesFloatMath {
    private static let sqrtHalf: Float = 0.707106781186547524
    private static let logP: [Float] = [
        7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1,
        1.4249322787E-1, -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1,
        3.3333331174E-1,
    ]
    private static let logQ1: Float = -2.12194440e-4
    private static let logQ2: Float = 0.693359375

    /// Natural logarithm of a positive normal float, as `log256_ps` computes it.
    static func log(_ input: Float) -> Float {
        let bits = max(input, Float(bitPattern: 0x0080_0000)).bitPattern
        var e = Float(Int32(bitPattern: bits >> 23) - 0x7F) + 1
        // Keep the mantissa, exponent of 0.5: x in [0.5, 1).
        var x = Float(bitPattern: (bits & ~UInt32(0x7F80_0000)) | Float(0.5).bitPattern)
        if x < sqrtHalf {
            // x = x + x - 1 and e -= 1, computed as (x - 1) + x like the vector code.
            e -= 1
            x = (x - 1) + x
        } else {
            x = x - 1
        }
        let z = x * x
        var y = logP[0]
        for k in 1..<logP.count { y = logP[k].addingProduct(y, x) }
        y = y * x
        // y*z + e*q1: the first product (y*z) is fused, e*q1 rounded on its own.
        y = (e * logQ1).addingProduct(y, z)
        // y - z*0.5, fused.
        y = y.addingProduct(-z, 0.5)
        // (x + y) + e*q2, fused.
        return (x + y).addingProduct(e, logQ2)
    }

    private static let fourOverPi: Float = 1.27323954473516
    private static let minusDP1: Float = -0.78515625
    private static let minusDP2: Float = -2.4187564849853515625e-4
    private static let minusDP3: Float = -3.77489497744594108e-8
    private static let sinP0: Float = -1.9515295891E-4
    private static let sinP1: Float = 8.3321608736E-3
    private static let sinP2: Float = -1.6666654611E-1
    private static let cosP0: Float = 2.443315711809948E-005
    private static let cosP1: Float = -1.388731625493765E-003
    private static let cosP2: Float = 4.166664568298827E-002

    /// Sine and cosine, as `sincos256_ps` computes them (for |x| < 8192).
    static func sinCos(_ input: Float) -> (sin: Float, cos: Float) {
        var sinSign = input.bitPattern & 0x8000_0000
        var x = Float(bitPattern: input.bitPattern & 0x7FFF_FFFF)
        // j = (int(x * 4/pi) + 1) & ~1
        var j = Int32(x * fourOverPi)
        j = (j &+ 1) & ~1
        let y = Float(j)
        let swapSinSign = UInt32(bitPattern: (j & 4) << 29)
        let usesSinPolynomialForSin = (j & 2) == 0
        let cosSign = UInt32(bitPattern: (~(j &- 2) & 4) << 29)
        sinSign ^= swapSinSign
        // Extended precision modular arithmetic: x = ((x - y*DP1) - y*DP2) - y*DP3, fused.
        x = x.addingProduct(y, minusDP1)
        x = x.addingProduct(y, minusDP2)
        x = x.addingProduct(y, minusDP3)
        let z = x * x
        // Cosine polynomial on [0, pi/4]: ((c0 z + c1) z + c2) z z - z/2 + 1.
        var cosPoly = cosP1.addingProduct(cosP0, z)
        cosPoly = cosP2.addingProduct(cosPoly, z)
        cosPoly = cosPoly * z
        cosPoly = (-(z * 0.5)).addingProduct(cosPoly, z)
        cosPoly = cosPoly + 1
        // Sine polynomial on [0, pi/4]: ((s0 z + s1) z + s2) z x + x.
        var sinPoly = sinP1.addingProduct(sinP0, z)
        sinPoly = sinP2.addingProduct(sinPoly, z)
        sinPoly = sinPoly * z
        sinPoly = x.addingProduct(sinPoly, x)
        let sinValue = usesSinPolynomialForSin ? sinPoly : cosPoly
        let cosValue = usesSinPolynomialForSin ? cosPoly : sinPoly
        return (Float(bitPattern: sinValue.bitPattern ^ sinSign),
                Float(bitPattern: cosValue.bitPattern ^ cosSign))
    }
}
