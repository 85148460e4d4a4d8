import Foundation
import Kernels

/// Which tensors of a single file were read, shared by its components' weight sources so
/// the leftovers can be reported once every component is loaded.
final class SingleFileUsage {
    private(set) var used = Set<String>()
    func markUsed(_ key: String) { used.insert(key) }
}

/// Reads one component (UNet, VAE or text encoder) from a single-file checkpoint: each
/// tensor is asked for by its diffusers name, `map` gives its original (LDM) key, and the
/// bytes are converted from the memory mapping straight into the engine's tensor — a fused
/// OpenCLIP q/k/v tensor contributes only the row block asked for. Missing tensors are
/// collected and reported by `finish()` with both names; leftovers are the checkpoint's
/// business (`SingleFileCheckpoint.checkLeftovers`), since one file holds every component.
final class SingleFileWeightSource: WeightSource {
    let file: SafeTensorsFile
    let component: String
    private let map: (String) -> LDMTensorRef?
    private let usage: SingleFileUsage
    private var missing: [String] = []
    let precision: WeightPrecision

    init(file: SafeTensorsFile, component: String, usage: SingleFileUsage, precision: WeightPrecision,
         map: @escaping (String) -> LDMTensorRef?) {
        self.file = file
        self.precision = precision
        self.component = component
        self.usage = usage
        self.map = map
    }

    private static func squeezed(_ s: [Int]) -> [Int] {
        var s = s
        while s.count > 1, s.last == 1 { s.removeLast() }
        return s
    }

    /// Where `name`'s values are: the stored tensor, and for a row block of a fused tensor
    /// its byte range and whether it is the last block; nil when missing (recorded).
    private func locate(_ name: String, _ shape: [Int]) throws -> (key: String, info: SafeTensorInfo, range: Range<Int>?, last: Bool)? {
        guard let ref = map(name) else {
            missing.append("\(name) (no original name known)")
            return nil
        }
        guard let key = ([ref.key] + ref.alternatives).first(where: { file.tensors[$0] != nil }),
              let info = file.tensors[key] else {
            missing.append("\(name) (\(ref.key))")
            return nil
        }
        usage.markUsed(key)
        let count = Tensor.elementCount(shape)
        if let part = ref.part {
            // Row block `part` of `parts`: the stored shape is [parts · rows, rest…].
            guard let rows = shape.first, ref.parts > 0, part >= 0, part < ref.parts,
                  info.shape.count == shape.count, info.shape.first == ref.parts * rows,
                  Array(info.shape.dropFirst()) == Array(shape.dropFirst()) else {
                var expected = shape
                if !expected.isEmpty { expected[0] *= ref.parts }
                throw WeightError.wrongShape(component: component, tensor: "\(key) (for \(name))", expected: expected, found: info.shape)
            }
            let bytes = count * info.dtype.byteSize
            let begin = part * bytes
            // In bounds: the file validated raw.count == parts · count · byteSize.
            guard begin + bytes <= info.dataRange.count else {
                throw WeightError.wrongShape(component: component, tensor: "\(key) (for \(name))", expected: shape, found: info.shape)
            }
            return (key, info, begin..<(begin + bytes), part == ref.parts - 1)
        }
        guard info.shape == shape || Self.squeezed(info.shape) == Self.squeezed(shape), info.elementCount == count else {
            throw WeightError.wrongShape(component: component, tensor: "\(key) (for \(name))", expected: shape, found: info.shape)
        }
        return (key, info, nil, true)
    }

    func tensor(_ name: String, _ shape: [Int], alternatives: [String]) throws -> Tensor {
        guard let found = try locate(name, shape) else { return Tensor(zeros: shape) }
        let t = Tensor(zeros: shape)
        let raw = try file.rawBytes(found.key)
        let bytes = found.range.map { UnsafeRawBufferPointer(rebasing: raw[$0]) } ?? raw
        try SafeTensorsFile.convert(bytes, dtype: found.info.dtype, count: t.count,
                                    into: UnsafeMutableBufferPointer(start: t.data, count: t.count), file: file.path, tensor: found.key)
        if found.last { file.dropPages(found.key) }
        precision.roundParameter(t, storedAs: found.info.dtype)
        return t
    }

    func weight(_ name: String, _ shape: [Int], alternatives: [String]) throws -> WeightTensor {
        guard let found = try locate(name, shape) else { return WeightTensor(Tensor(zeros: shape)) }
        return try file.weight(found.key, info: found.info, byteRange: found.range, shape: shape,
                               precision: precision, dropPages: found.last)
    }

    func finish() throws {
        if !missing.isEmpty { throw WeightError.missing(component: component, tensors: missing) }
    }
}
