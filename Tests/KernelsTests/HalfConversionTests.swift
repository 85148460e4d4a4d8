import XCTest
@testable import Kernels

/// float32 ⇄ 16-bit conversions: exact widening of every half pattern, round to nearest even
/// when narrowing (ties, overflow to ±inf, subnormals, ±0, NaN), bf16 as torch rounds it.
final class HalfConversionTests: XCTestCase {
    /// Narrows with the vector loop (8 at a time) and the scalar tail alike: the same value
    /// sits at index 3 (vector) and at index 9 (tail) of an 10-element call.
    private func narrow(_ x: Float) -> (vector: UInt16, tail: UInt16) {
        var src = [Float](repeating: 0, count: 10)
        src[3] = x
        src[9] = x
        var dst = [UInt16](repeating: 0xFFFF, count: 10)
        src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBytes { d in
                guard let sp = s.baseAddress, let dp = d.baseAddress else { return }
                HalfConversion.float32ToFloat16(sp, dp, count: 10)
            }
        }
        return (dst[3], dst[9])
    }

    func testEveryHalfWidensExactlyAndNarrowsBack() {
        let all = (0...0xFFFF).map { UInt16($0) }
        var wide = [Float](repeating: 0, count: all.count)
        all.withUnsafeBytes { s in
            wide.withUnsafeMutableBufferPointer { d in
                guard let sp = s.baseAddress, let dp = d.baseAddress else { return }
                HalfConversion.float16ToFloat32(sp, dp, count: all.count)
            }
        }
        var back = [UInt16](repeating: 0, count: all.count)
        wide.withUnsafeBufferPointer { s in
            back.withUnsafeMutableBytes { d in
                guard let sp = s.baseAddress, let dp = d.baseAddress else { return }
                HalfConversion.float32ToFloat16(sp, dp, count: all.count)
            }
        }
        var mismatches = 0
        for (i, h) in all.enumerated() {
            let reference = HalfConversion.halfBitsToFloat(h)
            let isNaN = (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0
            if isNaN {
                if !wide[i].isNaN || (back[i] & 0x7C00) != 0x7C00 || (back[i] & 0x03FF) == 0 { mismatches += 1 }
            } else if wide[i].bitPattern != reference.bitPattern || back[i] != h {
                mismatches += 1
            }
        }
        XCTAssertEqual(mismatches, 0, "half → float32 → half must be the identity (NaN stays NaN)")
    }

    func testNarrowingRoundsToNearestEven() {
        let ulp1: Float = 1.0 / 1024  // half's spacing in [1, 2)
        let cases: [(Float, UInt16, String)] = [
            (1, 0x3C00, "one"),
            (1 + ulp1 / 2, 0x3C00, "tie between 1 and 1+ulp rounds to the even 1"),
            (1 + 3 * ulp1 / 2, 0x3C02, "tie between 1+ulp and 1+2ulp rounds to the even 1+2ulp"),
            (1 + ulp1 / 2 + ulp1 / 64, 0x3C01, "just above the tie rounds up"),
            (-(1 + ulp1 / 2), 0xBC00, "negative tie"),
            (65504, 0x7BFF, "largest half"),
            (65519.99, 0x7BFF, "below the overflow threshold"),
            (65520, 0x7C00, "the overflow tie goes to inf"),
            (1e10, 0x7C00, "far past the range"),
            (-1e10, 0xFC00, "far past the range, negative"),
            (.infinity, 0x7C00, "inf"),
            (-.infinity, 0xFC00, "-inf"),
            (0, 0x0000, "zero"),
            (-0.0, 0x8000, "negative zero keeps its sign"),
            (Float(sign: .plus, exponent: -24, significand: 1), 0x0001, "smallest subnormal"),
            (Float(sign: .plus, exponent: -25, significand: 1), 0x0000, "half the smallest subnormal ties to even 0"),
            (Float(sign: .plus, exponent: -25, significand: 1.5), 0x0001, "above the tie rounds up to the subnormal"),
            (3 * Float(sign: .plus, exponent: -25, significand: 1), 0x0002, "1.5 subnormal ulps ties to the even 2"),
            (Float(sign: .plus, exponent: -14, significand: 1), 0x0400, "smallest normal"),
            (Float(sign: .plus, exponent: -14, significand: 1) - Float(sign: .plus, exponent: -24, significand: 1),
             0x03FF, "largest subnormal"),
        ]
        for (x, bits, what) in cases {
            let got = narrow(x)
            XCTAssertEqual(got.vector, bits, "vector: \(what)")
            XCTAssertEqual(got.tail, bits, "tail: \(what)")
        }
        let nan = narrow(.nan)
        XCTAssertTrue((nan.vector & 0x7C00) == 0x7C00 && (nan.vector & 0x03FF) != 0, "NaN stays NaN")
        XCTAssertTrue((nan.tail & 0x7C00) == 0x7C00 && (nan.tail & 0x03FF) != 0, "NaN stays NaN")
    }

    func testBFloat16RoundsAsTorch() {
        let ulp: Float = 1.0 / 128  // bf16's spacing in [1, 2)
        let cases: [(Float, UInt16, String)] = [
            (1, 0x3F80, "one"),
            (1 + ulp / 2, 0x3F80, "tie rounds to the even 1"),
            (1 + 3 * ulp / 2, 0x3F82, "tie rounds to the even 1+2ulp"),
            (1 + ulp / 2 + ulp / 256, 0x3F81, "above the tie rounds up"),
            (.greatestFiniteMagnitude, 0x7F80, "past bf16's largest finite value rounds to inf, as torch does"),
            (.infinity, 0x7F80, "inf"),
            (-.infinity, 0xFF80, "-inf"),
            (-0.0, 0x8000, "negative zero"),
            (Float(bitPattern: 0x0001_8000), 0x0002, "subnormal tie rounds to even"),
            (.nan, 0x7FC0, "NaN becomes torch's quiet NaN"),
            (Float(bitPattern: 0xFF80_0001), 0x7FC0, "a signalling NaN too"),
        ]
        for (x, bits, what) in cases {
            XCTAssertEqual(HalfConversion.bfloat16Bits(x), bits, what)
        }
        // Widening is exact for every pattern, and narrowing gives it back.
        let all = (0...0xFFFF).map { UInt16($0) }
        var wide = [Float](repeating: 0, count: all.count)
        all.withUnsafeBytes { s in
            wide.withUnsafeMutableBufferPointer { d in
                guard let sp = s.baseAddress, let dp = d.baseAddress else { return }
                HalfConversion.bfloat16ToFloat32(sp, dp, count: all.count)
            }
        }
        var mismatches = 0
        for (i, h) in all.enumerated() {
            if wide[i].bitPattern != UInt32(h) << 16 { mismatches += 1 }
            if !wide[i].isNaN && HalfConversion.bfloat16Bits(wide[i]) != h { mismatches += 1 }
        }
        XCTAssertEqual(mismatches, 0)
    }

    func testNarrowedWeightTensorKeepsShapeAndValues() {
        var rng = TestRNG(seed: 7)
        let t = rng.tensor([3, 5, 7])
        let w = WeightTensor.narrowing(t)
        XCTAssertEqual(w.shape, [3, 5, 7])
        XCTAssertEqual(w.halfFormat, .f16)
        XCTAssertEqual(w.byteCount, 2 * 105)
        let back = w.toArray()
        for (a, b) in zip(t.toArray(), back) {
            XCTAssertEqual(b, Float(Float16(a)), "narrowing is Float16(x), widening exact")
        }
        // A view of rows, and writing through `assign` narrows again.
        let rows = w.view(offset: 35, shape: [5, 7])
        XCTAssertEqual(rows.toArray(), Array(back[35..<70]))
        let ones = [Float](repeating: 1.0 + 1.0 / 2048, count: 35)  // a tie: rounds to 1
        ones.withUnsafeBufferPointer { p in if let b = p.baseAddress { rows.assign(from: b) } }
        XCTAssertEqual(w.toArray()[35..<70].allSatisfy { $0 == 1 }, true)
        XCTAssertEqual(Array(w.toArray()[0..<35]), Array(back[0..<35]), "other rows untouched")
    }
}
