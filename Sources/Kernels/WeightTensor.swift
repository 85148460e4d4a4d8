import Foundation

/// The 16-bit float formats weights can be kept in (safetensors `F16`, `BF16`).
public enum HalfFormat: String, Sendable, Equatable {
    /// IEEE 754 binary16.
    case f16
    /// bfloat16: the top 16 bits of a float32.
    case bf16
}

/// 16-bit weight storage: either a window of a memory-mapped checkpoint (kept alive by
/// `owner`, read-only) or memory of its own (weights narrowed or fused at load). Elements
/// may sit at any byte offset (safetensors only aligns to bytes), so kernels read them with
/// unaligned loads.
///
/// Not thread-safe for writing: `makeWritable` is for LoRA merging between jobs, when no
/// kernel reads the weights.
public final class HalfStorage: @unchecked Sendable {
    /// Element 0.
    public private(set) var base: UnsafeRawPointer
    /// Number of 16-bit elements.
    public let count: Int
    public let format: HalfFormat
    private var owned: UnsafeMutableRawPointer?
    /// Keeps a mapping alive (the `SafeTensorsFile`); nil for owned memory.
    private let owner: AnyObject?

    /// `count` elements at `base` inside memory `owner` keeps mapped.
    public init(mapping base: UnsafeRawPointer, count: Int, format: HalfFormat, owner: AnyObject) {
        self.base = base
        self.count = count
        self.format = format
        self.owner = owner
    }

    /// `count` zero elements of its own, 64-byte aligned.
    public init(count: Int, format: HalfFormat) {
        let p = HalfStorage.allocate(count)
        self.base = UnsafeRawPointer(p)
        self.owned = p
        self.count = count
        self.format = format
        self.owner = nil
    }

    private static func allocate(_ count: Int) -> UnsafeMutableRawPointer {
        ZeroedMemory.allocate(count * 2, what: "HalfStorage")
    }

    /// Whether the elements live in memory of its own (not in a file mapping).
    public var isOwned: Bool { owned != nil }

    /// The elements, writable: a mapped window is first copied into memory of its own (the
    /// mapping is read-only), so the file never changes.
    public func makeWritable() -> UnsafeMutableRawPointer {
        if let owned { return owned }
        let p = HalfStorage.allocate(count)
        p.copyMemory(from: base, byteCount: count * 2)
        owned = p
        base = UnsafeRawPointer(p)
        return p
    }

    deinit { if let owned { ZeroedMemory.free(owned, bytes: count * 2) } }
}

/// A weight operand as kernels see it: float32 elements, 16-bit ones widened to float32
/// inside the kernel (`WeightOperand.widen`), so a layer's full fp32 copy never exists, or
/// float32 elements in `PackedLinear`'s panel layout.
public enum WeightOperand: @unchecked Sendable {
    case f32(UnsafePointer<Float>)
    case half(UnsafeRawPointer, HalfFormat)
    /// A [rows, inFeatures] weight packed by `PackedLinear.pack` at `base`; the operand starts
    /// `offset` elements into W's row-major order (so `advanced(by:)` and `widen` address W's
    /// elements as if it were row-major with row stride `inFeatures`).
    case packed(base: UnsafePointer<Float>, offset: Int, inFeatures: Int)

    /// The operand `elements` further on.
    @inline(__always) public func advanced(by elements: Int) -> WeightOperand {
        switch self {
        case .f32(let p): return .f32(p + elements)
        case .half(let p, let f): return .half(p + 2 * elements, f)
        case let .packed(base, offset, k): return .packed(base: base, offset: offset + elements, inFeatures: k)
        }
    }

    /// Widens the row-major block rows × cols (row stride `ld` elements) into `dst` (row
    /// stride `dstLd` floats). Exact: every half value is a float32 value. A packed operand
    /// needs `ld` equal to its `inFeatures` (the block lies inside W's rows).
    @inline(__always)
    public func widen(rows: Int, cols: Int, ld: Int, into dst: UnsafeMutablePointer<Float>, dstLd: Int) {
        if case let .packed(base, offset, k) = self {
            precondition(ld == k || rows <= 1, "WeightOperand.widen: a packed weight's rows are \(k) long, not \(ld)")
            if rows == 1 && offset % k + cols > k {
                // One run across row ends (WeightTensor.widen(into:) of a whole view).
                var done = 0
                while done < cols {
                    let at = offset + done, n = min(cols - done, k - at % k)
                    PackedLinear.unpack(base, inFeatures: k, row0: at / k, rows: 1, col0: at % k, cols: n,
                                        into: dst + done, ldd: n)
                    done += n
                }
                return
            }
            PackedLinear.unpack(base, inFeatures: k, row0: offset / k, rows: rows, col0: offset % k, cols: cols,
                                into: dst, ldd: dstLd)
            return
        }
        for r in 0..<rows {
            switch self {
            case .f32(let p): (dst + r * dstLd).update(from: p + r * ld, count: cols)
            case .half(let p, .f16): HalfConversion.float16ToFloat32(p + 2 * r * ld, dst + r * dstLd, count: cols)
            case .half(let p, .bf16): HalfConversion.bfloat16ToFloat32(p + 2 * r * ld, dst + r * dstLd, count: cols)
            case .packed: break
            }
        }
    }
}

/// A layer's weight tensor in the precision it is kept in: float32 (`Tensor`), 16-bit
/// (`HalfStorage`, widened inside the kernels) or float32 packed for `PackedLinear`. Views
/// (`view(offset:shape:)`) share the storage, as `Tensor`'s do: the rows of a fused Q/K/V
/// weight are views.
public struct WeightTensor: @unchecked Sendable {
    /// Where the elements are.
    public enum Storage {
        case f32(Tensor)
        case half(HalfStorage, offset: Int)
        /// `packed` holds a whole [rows, inFeatures] weight in `PackedLinear`'s layout; this
        /// tensor is its rows from element `offset` (row-major numbering) on.
        case packed(Tensor, offset: Int, inFeatures: Int)
    }

    public let storage: Storage
    /// Extent of each dimension, outermost first.
    public let shape: [Int]
    /// Number of elements.
    public let count: Int

    /// Kept in float32.
    public init(_ tensor: Tensor) {
        storage = .f32(tensor)
        shape = tensor.shape
        count = tensor.count
    }

    /// `shape` elements of `half`, starting `offset` elements in.
    public init(half: HalfStorage, offset: Int = 0, shape: [Int]) {
        let n = Tensor.elementCount(shape)
        precondition(offset >= 0 && offset + n <= half.count,
                     "WeightTensor: view [\(offset), \(offset + n)) outside storage of \(half.count)")
        storage = .half(half, offset: offset)
        self.shape = shape
        count = n
    }

    /// Packed storage (`packedForLinear`, views of it).
    private init(packed: Tensor, offset: Int, inFeatures: Int, shape: [Int]) {
        let n = Tensor.elementCount(shape)
        precondition(inFeatures > 0 && offset % inFeatures == 0 && n % inFeatures == 0 && offset + n <= packed.count,
                     "WeightTensor: packed view [\(offset), \(offset + n)) is not whole rows of \(inFeatures) inside \(packed.count)")
        storage = .packed(packed, offset: offset, inFeatures: inFeatures)
        self.shape = shape
        count = n
    }

    /// This float32 [out, in] weight in `PackedLinear`'s layout, in memory of its own, when
    /// `PackedLinear.canPack` says the shape packs and the AVX-512 kernels run; else nil.
    public func packedForLinear() -> WeightTensor? {
        guard rank == 2, case .f32(let t) = storage, CPUFeatures.useAVX512Kernels,
              PackedLinear.canPack(outFeatures: shape[0], inFeatures: shape[1]) else { return nil }
        let p = Tensor(zeros: [count])
        PackedLinear.pack(UnsafePointer(t.data), ldw: shape[1], rows: 0..<shape[0], inFeatures: shape[1], into: p.data)
        return WeightTensor(packed: p, offset: 0, inFeatures: shape[1], shape: shape)
    }

    /// Whether the elements are in `PackedLinear`'s layout.
    public var isPacked: Bool {
        if case .packed = storage { return true }
        return false
    }

    /// `tensor` narrowed to IEEE half, rounding to nearest even (diffusers' `.half()`),
    /// in memory of its own.
    public static func narrowing(_ tensor: Tensor) -> WeightTensor {
        let h = HalfStorage(count: tensor.count, format: .f16)
        HalfConversion.float32ToFloat16(tensor.data, h.makeWritable(), count: tensor.count)
        return WeightTensor(half: h, shape: tensor.shape)
    }

    /// Zeros of `shape` in `format` (nil: float32), in memory of its own.
    public init(zeros shape: [Int], format: HalfFormat?) {
        if let format {
            self.init(half: HalfStorage(count: Tensor.elementCount(shape), format: format), shape: shape)
        } else {
            self.init(Tensor(zeros: shape))
        }
    }

    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// The 16-bit format, nil when kept in float32.
    public var halfFormat: HalfFormat? {
        if case .half(let h, _) = storage { return h.format }
        return nil
    }

    /// The float32 tensor itself (nil when kept in 16 bits or packed).
    public var float32: Tensor? {
        if case .f32(let t) = storage { return t }
        return nil
    }

    /// Bytes the elements take.
    public var byteCount: Int { count * (halfFormat == nil ? 4 : 2) }

    /// What kernels read.
    public var operand: WeightOperand {
        switch storage {
        case .f32(let t): return .f32(UnsafePointer(t.data))
        case .half(let h, let o): return .half(h.base + 2 * o, h.format)
        case let .packed(t, o, k): return .packed(base: UnsafePointer(t.data), offset: o, inFeatures: k)
        }
    }

    /// A view of `shape` starting `offset` elements after this view's first element.
    public func view(offset extra: Int, shape newShape: [Int]) -> WeightTensor {
        switch storage {
        case .f32(let t): return WeightTensor(t.view(offset: extra, shape: newShape))
        case .half(let h, let o): return WeightTensor(half: h, offset: o + extra, shape: newShape)
        case let .packed(t, o, k): return WeightTensor(packed: t, offset: o + extra, inFeatures: k, shape: newShape)
        }
    }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> WeightTensor {
        precondition(Tensor.elementCount(newShape) == count, "WeightTensor.reshaped: \(shape) → \(newShape) changes count")
        return view(offset: 0, shape: newShape)
    }

    /// Identity of the storage and the first element (which tensor of a file, which rows of
    /// a fused one), for the parameter registry.
    public var storageKey: StorageKey {
        switch storage {
        case .f32(let t): return StorageKey(object: ObjectIdentifier(t.storage), offset: t.offset)
        case .half(let h, let o): return StorageKey(object: ObjectIdentifier(h), offset: o)
        case let .packed(t, o, _): return StorageKey(object: ObjectIdentifier(t.storage), offset: t.offset + o)
        }
    }

    /// Where a weight's elements start: its storage object and offset.
    public struct StorageKey: Hashable, Sendable {
        let object: ObjectIdentifier
        let offset: Int
    }

    /// The elements widened into `dst` (count floats).
    public func widen(into dst: UnsafeMutablePointer<Float>) {
        operand.widen(rows: 1, cols: count, ld: count, into: dst, dstLd: count)
    }

    /// A float32 copy (tests, LoRA merging, debugging).
    public func widened() -> Tensor {
        let t = Tensor(zeros: shape)
        widen(into: t.data)
        return t
    }

    /// The elements as float32 values.
    public func toArray() -> [Float] { widened().toArray() }

    /// Copies `other`'s elements (same count and storage format; float32 and packed float32
    /// count as one format) into this view.
    public func copy(from other: WeightTensor) {
        precondition(other.count == count && other.halfFormat == halfFormat,
                     "WeightTensor.copy: \(other.shape) \(other.halfFormat?.rawValue ?? "f32") into \(shape) \(halfFormat?.rawValue ?? "f32")")
        switch (storage, other.storage) {
        case (.f32(let dst), .f32(let src)):
            dst.copy(from: src)
        case (.half(let dst, let o), .half(let src, let so)):
            (dst.makeWritable() + 2 * o).copyMemory(from: src.base + 2 * so, byteCount: 2 * count)
        case (.packed, .f32(let src)):
            assign(from: src.data)
        case (.f32(let dst), .packed):
            other.widen(into: dst.data)
        case (.packed, .packed):
            assign(from: other.widened().data)
        default:
            preconditionFailure("WeightTensor.copy: formats differ")
        }
    }

    /// Stores float32 `values` (count floats) into this view, narrowing to its format with
    /// round-to-nearest-even when it is kept in 16 bits.
    public func assign(from values: UnsafePointer<Float>) {
        switch storage {
        case .f32(let t):
            t.data.update(from: values, count: count)
        case let .packed(t, o, k):
            PackedLinear.pack(values, ldw: k, rows: (o / k)..<(o / k + count / k), inFeatures: k, into: t.data)
        case .half(let h, let o):
            let dst = h.makeWritable() + 2 * o
            switch h.format {
            case .f16: HalfConversion.float32ToFloat16(values, dst, count: count)
            case .bf16: HalfConversion.float32ToBFloat16(values, dst, count: count)
            }
        }
    }
}
