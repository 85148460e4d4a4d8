import Kernels

/// How a model keeps its layer weights (linear and convolution kernels, and CLIP's token
/// embedding table) in memory: the model entry's `weights:` in the daemon config,
/// `--weights` of `diffusion-bench`. Norm scales, biases and position embeddings are
/// always fp32 (small).
public enum WeightPrecision: String, Sendable, CaseIterable, Equatable {
    /// fp16 / bf16 tensors as stored, pointing into the safetensors file's memory mapping
    /// (fused ones in memory of their own), widened to fp32 inside the kernels (F16C);
    /// fp32 tensors stay fp32. The default.
    case stored
    /// As `stored`, and fp32 tensors are narrowed to IEEE half at load (round to nearest
    /// even): layer weights kept in 16 bits (half the memory of an fp32 checkpoint), the
    /// other fp32 parameters (biases, norms, position embeddings) rounded to half values but kept in
    /// fp32, so the model computes what diffusers computes with the checkpoint converted by
    /// torch's `.half()` and run in fp32.
    case f16
    /// Every weight widened to fp32 at load (twice the memory of a half checkpoint; the
    /// reference for comparisons).
    case f32

    /// Applies `.f16`'s rounding to a parameter just read from an fp32 (or f64) tensor.
    func roundParameter(_ t: Tensor, storedAs dtype: SafeTensorsDType) {
        if self == .f16 && (dtype == .f32 || dtype == .f64) { HalfConversion.roundToFloat16(t.data, count: t.count) }
    }

    /// The values a config or command line may name, for error messages.
    public static let names = allCases.map(\.rawValue).joined(separator: ", ")
}

extension SafeTensorsFile {
    /// Tensor `key` (`info`), or its `byteRange` (a row block), as a layer weight of `shape`
    /// kept as `precision` says: a 16-bit tensor as a view of the mapping (no copy, its
    /// pages read on first use and shared with the page cache), else converted to fp32 (and
    /// narrowed to half for `.f16`). `dropPages` is whether the converted bytes' pages may be
    /// given back now (false while other row blocks of the same tensor are still to come).
    func weight(_ key: String, info: SafeTensorInfo, byteRange: Range<Int>? = nil, shape: [Int],
                precision: WeightPrecision, dropPages drop: Bool = true) throws -> WeightTensor {
        let raw = try rawBytes(key)
        let bytes = byteRange.map { UnsafeRawBufferPointer(rebasing: raw[$0]) } ?? raw
        let count = Tensor.elementCount(shape)
        let half: HalfFormat? = info.dtype == .f16 ? .f16 : info.dtype == .bf16 ? .bf16 : nil
        if precision != .f32, let half, count > 0, let start = bytes.baseAddress, bytes.count == 2 * count {
            return WeightTensor(half: HalfStorage(mapping: start, count: count, format: half, owner: self), shape: shape)
        }
        if precision == .f16, info.dtype == .f32, count > 0, let start = bytes.baseAddress, bytes.count == 4 * count {
            // Straight from the mapping to half: no fp32 copy of the tensor is ever made.
            let h = HalfStorage(count: count, format: .f16)
            HalfConversion.float32ToFloat16(start, h.makeWritable(), count: count)
            if drop { dropPages(key) }
            return WeightTensor(half: h, shape: shape)
        }
        let t = Tensor(zeros: shape)
        try SafeTensorsFile.convert(bytes, dtype: info.dtype, count: count,
                                    into: UnsafeMutableBufferPointer(start: t.data, count: t.count), file: path, tensor: key)
        if drop { dropPages(key) }
        return precision == .f16 ? .narrowing(t) : WeightTensor(t)
    }
}
