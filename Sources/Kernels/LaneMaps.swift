/// The lane type of `LaneMaps`: one `VFloat`, so the maps follow the vector width that
/// Vector.swift fixes for every kernel.
public typealias FloatLanes = VFloat

/// Element-wise loops over float buffers, written once as a closure over `FloatLanes`.
/// The tail is handled by the same closure on a zero-padded vector, so there is no
/// separate scalar path to drift out of sync.
///
/// Unlike the `v…` primitives of Vector.swift, which use FMA, closures given to these maps
/// should round products and sums separately (`a * b + c`, which Swift never fuses), as
/// torch's element-wise tensor ops do: the samplers use them to track diffusers' float32
/// results bit for bit.
///
/// Everything here is `@inlinable` and `@inline(__always)`: the maps run per element per
/// sampler step in other modules, and the closure must be inlined into the loop there.
public enum LaneMaps {
    /// Lanes in one `FloatLanes`.
    @inlinable
    static var width: Int { FloatLanes.scalarCount }

    /// Loads `count` (at most `width`) floats, zero-padding the rest.
    @inlinable @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>, _ count: Int) -> FloatLanes {
        if count == width { return UnsafeRawPointer(pointer).loadUnaligned(as: FloatLanes.self) }
        var v = FloatLanes()
        for i in 0..<count { v[i] = pointer[i] }
        return v
    }

    /// Stores the first `count` (at most `width`) lanes of `v`.
    @inlinable @inline(__always)
    static func store(_ v: FloatLanes, _ pointer: UnsafeMutablePointer<Float>, _ count: Int) {
        if count == width {
            UnsafeMutableRawPointer(pointer).storeBytes(of: v, as: FloatLanes.self)
            return
        }
        for i in 0..<count { pointer[i] = v[i] }
    }

    /// out[i] = f(a[i]); `out` may alias `a`.
    @inlinable @inline(__always)
    public static func map(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, count: Int,
                           _ f: (FloatLanes) -> FloatLanes) {
        var i = 0
        while i < count {
            let n = min(width, count - i)
            store(f(load(a + i, n)), out + i, n)
            i += width
        }
    }

    /// out[i] = f(a[i], b[i]); `out` may alias the inputs.
    @inlinable @inline(__always)
    public static func map(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                           count: Int, _ f: (FloatLanes, FloatLanes) -> FloatLanes) {
        var i = 0
        while i < count {
            let n = min(width, count - i)
            store(f(load(a + i, n), load(b + i, n)), out + i, n)
            i += width
        }
    }

    /// out[i] = f(a[i], b[i], c[i]); `out` may alias the inputs.
    @inlinable @inline(__always)
    public static func map(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                           _ c: UnsafePointer<Float>, count: Int,
                           _ f: (FloatLanes, FloatLanes, FloatLanes) -> FloatLanes) {
        var i = 0
        while i < count {
            let n = min(width, count - i)
            store(f(load(a + i, n), load(b + i, n), load(c + i, n)), out + i, n)
            i += width
        }
    }

    /// out[i] = f(a[i], b[i], c[i], d[i]); `out` may alias the inputs.
    @inlinable @inline(__always)
    public static func map(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                           _ c: UnsafePointer<Float>, _ d: UnsafePointer<Float>, count: Int,
                           _ f: (FloatLanes, FloatLanes, FloatLanes, FloatLanes) -> FloatLanes) {
        var i = 0
        while i < count {
            let n = min(width, count - i)
            store(f(load(a + i, n), load(b + i, n), load(c + i, n), load(d + i, n)), out + i, n)
            i += width
        }
    }

    /// `x.clamp(-range, range)` lane-wise.
    @inlinable @inline(__always)
    public static func clamp(_ x: FloatLanes, _ range: Float) -> FloatLanes {
        x.clamped(lowerBound: FloatLanes(repeating: -range), upperBound: FloatLanes(repeating: range))
    }
}
