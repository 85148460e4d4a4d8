/// Element-wise SIMD loops over latent buffers. Each operation is written once as a
/// closure over `SIMD8<Float>` lanes; the tail is handled by the same closure on a
/// zero-padded vector, so there is no separate scalar path to drift out of sync.
///
/// Products and sums are rounded separately (no FMA), as torch's element-wise tensor
/// ops round them, so the samplers track diffusers' float32 results closely.
enum LatentOps {
    typealias V = SIMD8<Float>

    @inline(__always)
    private static func load(_ pointer: UnsafePointer<Float>, _ count: Int) -> V {
        if count == 8 { return UnsafeRawPointer(pointer).loadUnaligned(as: V.self) }
        var v = V()
        for i in 0..<count { v[i] = pointer[i] }
        return v
    }

    @inline(__always)
    private static func store(_ v: V, _ pointer: UnsafeMutablePointer<Float>, _ count: Int) {
        if count == 8 {
            UnsafeMutableRawPointer(pointer).storeBytes(of: v, as: V.self)
            return
        }
        for i in 0..<count { pointer[i] = v[i] }
    }

    /// out[i] = f(a[i]); `out` may alias `a`.
    @inline(__always)
    static func map(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, count: Int,
                    _ f: (V) -> V) {
        var i = 0
        while i < count {
            let n = min(8, count - i)
            store(f(load(a + i, n)), out + i, n)
            i += 8
        }
    }

    /// out[i] = f(a[i], b[i]); `out` may alias the inputs.
    @inline(__always)
    static func map(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                    count: Int, _ f: (V, V) -> V) {
        var i = 0
        while i < count {
            let n = min(8, count - i)
            store(f(load(a + i, n), load(b + i, n)), out + i, n)
            i += 8
        }
    }

    /// out[i] = f(a[i], b[i], c[i]); `out` may alias the inputs.
    @inline(__always)
    static func map(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                    _ c: UnsafePointer<Float>, count: Int, _ f: (V, V, V) -> V) {
        var i = 0
        while i < count {
            let n = min(8, count - i)
            store(f(load(a + i, n), load(b + i, n), load(c + i, n)), out + i, n)
            i += 8
        }
    }

    /// out[i] = f(a[i], b[i], c[i], d[i]); `out` may alias the inputs.
    @inline(__always)
    static func map(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                    _ c: UnsafePointer<Float>, _ d: UnsafePointer<Float>, count: Int, _ f: (V, V, V, V) -> V) {
        var i = 0
        while i < count {
            let n = min(8, count - i)
            store(f(load(a + i, n), load(b + i, n), load(c + i, n), load(d + i, n)), out + i, n)
            i += 8
        }
    }

    /// `x.clamp(-range, range)` lane-wise.
    @inline(__always)
    static func clamp(_ x: V, _ range: Float) -> V {
        x.clamped(lowerBound: V(repeating: -range), upperBound: V(repeating: range))
    }
}
