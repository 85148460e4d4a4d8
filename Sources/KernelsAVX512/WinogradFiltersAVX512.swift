// The AVX-512 build of the Winograd filter transforms U = G g Gᵀ (Kernels' Winograd.swift has
// F(2×2)'s `winogradWeightTransform`, WinogradF4.swift F(4×4)'s, and the matrices): the same
// operations in the same order at 16 lanes, so the same bits (AVX512KernelTests checks it).
//
// Why: few-tile layers (SD's 16×16 and 32×32 levels) transform their filters on every call;
// at 8 lanes the transform was a sixth of such a layer, half of it gathering the nine taps
// lane by lane (a broadcast, compare and blend per float). Here sixteen filters' taps come from
// nine contiguous loads by permutes (`diffusiond_filter_tap16`).

#if arch(x86_64)
import CAVX512

/// Winograd filter transforms for CPUs with AVX-512 (F, CD, BW, DQ, VL).
public enum AVX512WinogradFilters {
    /// F(2×2, 3×3): U[k][c] = (G g Gᵀ)[k] for the `cin` 3×3 filters of one output channel
    /// (`src` is [cin, 3, 3]), element k of channel c at `u[k·plane + c]`, 16 channels at a time.
    /// Returns how many channels it did (a multiple of 16: Kernels does the rest).
    public static func f2(_ src: UnsafePointer<Float>, cin: Int, into u: UnsafeMutablePointer<Float>, plane: Int) -> Int {
        let half = V16(repeating: 0.5)
        var c = 0
        while c + 16 <= cin {
            let g = taps(src + 9 * c)
            // t = G g: rows t0 = g row 0, t1 = ½(g0 + g1 + g2), t2 = ½(g0 − g1 + g2), t3 = g row 2;
            // then each row times Gᵀ.
            @inline(__always) func store(_ r: Int, _ a: V16, _ b: V16, _ d: V16) {
                let base = u + 4 * r * plane + c
                store16(a, base)
                store16(half * (a + b + d), base + plane)
                store16(half * (a - b + d), base + 2 * plane)
                store16(d, base + 3 * plane)
            }
            store(0, g.0, g.1, g.2)
            store(1, half * (g.0 + g.3 + g.6), half * (g.1 + g.4 + g.7), half * (g.2 + g.5 + g.8))
            store(2, half * (g.0 - g.3 + g.6), half * (g.1 - g.4 + g.7), half * (g.2 - g.5 + g.8))
            store(3, g.6, g.7, g.8)
            c += 16
        }
        return c
    }

    /// F(4×4, 3×3): as `f2` with G the 6×3 matrix of WinogradF4.swift, element k = 6i + j.
    public static func f4(_ src: UnsafePointer<Float>, cin: Int, into u: UnsafeMutablePointer<Float>, plane: Int) -> Int {
        var c = 0
        while c + 16 <= cin {
            let g = taps(src + 9 * c)
            // G g, one column (g[0][j], g[1][j], g[2][j]) at a time: t[i][j].
            let t0 = gTimes(g.0, g.3, g.6), t1 = gTimes(g.1, g.4, g.7), t2 = gTimes(g.2, g.5, g.8)
            // (G g) Gᵀ, row i of G g at a time: U[6i + j].
            @inline(__always) func row(_ i: Int, _ a: V16, _ b: V16, _ d: V16) {
                let r = gTimes(a, b, d)
                let base = u + 6 * i * plane + c
                store16(r.0, base); store16(r.1, base + plane); store16(r.2, base + 2 * plane)
                store16(r.3, base + 3 * plane); store16(r.4, base + 4 * plane); store16(r.5, base + 5 * plane)
            }
            row(0, t0.0, t1.0, t2.0); row(1, t0.1, t1.1, t2.1); row(2, t0.2, t1.2, t2.2)
            row(3, t0.3, t1.3, t2.3); row(4, t0.4, t1.4, t2.4); row(5, t0.5, t1.5, t2.5)
            c += 16
        }
        return c
    }

    /// The nine taps of 16 consecutive filters at `f`, lane j of tap e = f[9j + e].
    @inline(__always)
    private static func taps(_ f: UnsafePointer<Float>) -> (V16, V16, V16, V16, V16, V16, V16, V16, V16) {
        (diffusiond_filter_tap16(f, 0), diffusiond_filter_tap16(f, 1), diffusiond_filter_tap16(f, 2),
         diffusiond_filter_tap16(f, 3), diffusiond_filter_tap16(f, 4), diffusiond_filter_tap16(f, 5),
         diffusiond_filter_tap16(f, 6), diffusiond_filter_tap16(f, 7), diffusiond_filter_tap16(f, 8))
    }

    /// G x for one 3-vector x of F(4×4)'s G (WinogradF4.swift's `g`, the same operations).
    @inline(__always)
    private static func gTimes(_ a: V16, _ b: V16, _ c: V16) -> (V16, V16, V16, V16, V16, V16) {
        let sixth = V16(repeating: 1.0 / 6), quarter = V16(repeating: 0.25)
        let ac = a + c
        let p = ac.addingProduct(a, -0.75)          // ¼a + c
        return (quarter * a, -sixth * (ac + b), sixth * (b - ac),
                sixth * p.addingProduct(b, 0.5), sixth * p.addingProduct(b, -0.5), c)
    }
}
#endif
