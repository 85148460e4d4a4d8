import Foundation

/// Owned, 64-byte-aligned float32 storage. Shared by every `Tensor` view made from it.
public final class TensorStorage: @unchecked Sendable {
    /// First element; aligned to 64 bytes.
    public let base: UnsafeMutablePointer<Float>
    /// Number of floats allocated.
    public let capacity: Int

    /// Allocates `capacity` floats set to zero; `hugePages` lets a large block be advised
    /// MADV_HUGEPAGE (`ZeroedMemory`).
    public init(capacity: Int, hugePages: Bool = true) {
        precondition(capacity >= 0, "TensorStorage: negative capacity \(capacity)")
        self.capacity = capacity
        let raw = ZeroedMemory.allocate(capacity * MemoryLayout<Float>.stride, what: "TensorStorage", hugePages: hugePages)
        base = raw.bindMemory(to: Float.self, capacity: max(capacity, 1))
    }

    deinit { ZeroedMemory.free(base, bytes: capacity * MemoryLayout<Float>.stride) }
}

/// A float32 tensor in row-major order (NCHW for images, batch first): a shape over a
/// window of shared storage. Copying a `Tensor` copies the view, not the data, so
/// `reshaped`, `batch(_:)` and `view(offset:shape:)` are cheap. Kernels write through
/// `data`; outputs are passed in by the caller, so nothing allocates inside a loop.
public struct Tensor: @unchecked Sendable {
    /// The storage this view reads and writes.
    public let storage: TensorStorage
    /// Offset of the first element in `storage`, in floats.
    public let offset: Int
    /// Extent of each dimension, outermost first.
    public let shape: [Int]
    /// Number of elements (product of `shape`).
    public let count: Int

    /// A zero-filled tensor of the given shape.
    public init(zeros shape: [Int]) {
        let n = Tensor.elementCount(shape)
        self.init(storage: TensorStorage(capacity: n), offset: 0, shape: shape)
    }

    /// A tensor holding `values` (row-major) in the given shape.
    public init(shape: [Int], values: [Float]) {
        let n = Tensor.elementCount(shape)
        precondition(values.count == n, "Tensor: \(values.count) values for shape \(shape) (\(n) elements)")
        self.init(zeros: shape)
        values.withUnsafeBufferPointer { src in
            if let p = src.baseAddress { data.update(from: p, count: n) }
        }
    }

    /// A view of `shape` starting `offset` floats into `storage`.
    public init(storage: TensorStorage, offset: Int, shape: [Int]) {
        let n = Tensor.elementCount(shape)
        precondition(offset >= 0 && offset + n <= storage.capacity,
                     "Tensor: view [\(offset), \(offset + n)) outside storage of \(storage.capacity)")
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.count = n
    }

    /// Product of the extents; every extent must be ≥ 0.
    public static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            precondition(d >= 0, "Tensor: negative extent in shape \(shape)")
            n *= d
        }
        return n
    }

    /// Pointer to the first element of this view.
    @inline(__always) public var data: UnsafeMutablePointer<Float> { storage.base + offset }

    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// Extent of dimension `i`; negative `i` counts from the end.
    public func dim(_ i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(Tensor.elementCount(newShape) == count, "Tensor.reshaped: \(shape) → \(newShape) changes count")
        return Tensor(storage: storage, offset: offset, shape: newShape)
    }

    /// Element `i` along the first dimension, as a view with that dimension removed.
    public func batch(_ i: Int) -> Tensor {
        precondition(!shape.isEmpty && i >= 0 && i < shape[0], "Tensor.batch: index \(i) outside \(shape)")
        let inner = Array(shape.dropFirst())
        return Tensor(storage: storage, offset: offset + i * (count / shape[0]), shape: inner)
    }

    /// Elements `range` along the first dimension, as a view.
    public func batches(_ range: Range<Int>) -> Tensor {
        precondition(!shape.isEmpty && range.lowerBound >= 0 && range.upperBound <= shape[0],
                     "Tensor.batches: \(range) outside \(shape)")
        var s = shape
        s[0] = range.count
        return Tensor(storage: storage, offset: offset + range.lowerBound * (count / max(shape[0], 1)), shape: s)
    }

    /// A view of `shape` starting `offset` floats after this view's first element.
    public func view(offset extra: Int, shape newShape: [Int]) -> Tensor {
        Tensor(storage: storage, offset: offset + extra, shape: newShape)
    }

    /// Copies the elements out (tests, debugging, small outputs).
    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// Copies `other`'s elements into this view (same element count).
    public func copy(from other: Tensor) {
        precondition(other.count == count, "Tensor.copy: \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    /// Sets every element to `value`.
    public func fill(_ value: Float) { data.update(repeating: value, count: count) }
}
