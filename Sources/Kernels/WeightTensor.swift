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

/// A weight operand as kernels see it: float32 elements, or 16-bit ones widened to float32
/// inside the kernel (`WeightOperand.widen`), so a layer's full fp32 copy never exists.
public enum WeightOperand: @unchecked Sendable {
    case f32(UnsafePointer<Float>)
    case half(UnsafeRawPointer, HalfFormat)

    /// The operand `elements` further on.
    @inline(__always) public func advanced(by elements: Int) -> WeightOperand {
        switch self {
        case .f32(let p): return .f32(p + elements)
        case .half(let p, let f): return .half(p + 2 * elements, f)
        }
    }

    /// Widens the row-major block rows × cols (row stride `ld` elements) into `dst` (row
    /// stride `dstLd` floats). Exact: every half value is a float32 value.
    @inline(__always)
    public func widen(rows: Int, cols: Int, ld: Int, into dst: UnsafeMutablePointer<Float>, dstLd: Int) {
        for r in 0..<rows {
            switch self {
            case .f32(let p): (dst + r * dstLd).update(from: p + r * ld, count: cols)
            case .half(let p, .f16): HalfConversion.float16ToFloat32(p + 2 * r * ld, dst + r * dstLd, count: cols)
            case .half(let p, .bf16): HalfConversion.bfloat16ToFloat32(p + 2 * r * ld, dst + r * dstLd, count: cols)
            }
        }
    }
}

/// A layer's weight tensor in the precision it is kept in: float32 (`Tensor`) or 16-bit
/// (`HalfStorage`, widened inside the kernels). Views (`view(offset:shape:)`) share the
/// storage, as `Tensor`'s do: the rows of a fused Q/K/V weight are views.
public struct WeightTensor: @unchecked Sendable {
    /// Where the elements are.
    public enum Storage {
        case f32(Tensor)
        case half(HalfStorage, offset: Int)
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

    /// The float32 tensor itself (nil when kept in 16 bits).
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
        }
    }

    /// A view of `shape` starting `offset` elements after this view's first element.
    public func view(offset extra: Int, shape newShape: [Int]) -> WeightTensor {
        switch storage {
        case .f32(let t): return WeightTensor(t.view(offset: extra, shape: newShape))
        case .half(let h, let o): return WeightTensor(half: h, offset: o + extra, shape: newShape)
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

    /// Copies `other`'s elements (same count and storage format) into this view.
    public func copy(from other: WeightTensor) {
        precondition(other.count == count && other.halfFormat == halfFormat,
                     "WeightTensor.copy: \(other.shape) \(other.halfFormat?.rawValue ?? "f32") into \(shape) \(halfFormat?.rawValue ?? "f32")")
        switch (storage, other.storage) {
        case (.f32(let dst), .f32(let src)):
            dst.copy(from: src)
        case (.half(let dst, let o), .half(let src, let so)):
            (dst.makeWritable() + 2 * o).copyMemory(from: src.base + 2 * so, byteCount: 2 * count)
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
        case .half(let h, let o):
            let dst = h.makeWritable() + 2 * o
            switch h.format {
            case .f16: HalfConversion.float32ToFloat16(values, dst, count: count)
            case .bf16: HalfConversion.float32ToBFloat16(values, dst, count: count)
            }
        }
    }
}
