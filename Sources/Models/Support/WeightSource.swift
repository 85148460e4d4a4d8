import Foundation
import Kernels

/// Problems with a component's weights; every case names the tensor.
public enum WeightError: Error, CustomStringConvertible, Equatable {
    case missing(component: String, tensors: [String])
    case wrongShape(component: String, tensor: String, expected: [Int], found: [Int])
    case unexpected(component: String, tensors: [String])
    case noWeightFile(directory: String)

    public var description: String {
        switch self {
        case let .missing(c, t):
            return "\(c): \(t.count) tensor(s) missing from the checkpoint: \(t.prefix(8).joined(separator: ", "))\(t.count > 8 ? ", …" : "")"
        case let .wrongShape(c, t, e, f):
            return "\(c): tensor '\(t)' has shape \(f), the config needs \(e)"
        case let .unexpected(c, t):
            return "\(c): \(t.count) tensor(s) in the checkpoint that this architecture does not use (config does not match weights?): \(t.prefix(8).joined(separator: ", "))\(t.count > 8 ? ", …" : "")"
        case let .noWeightFile(d):
            return "\(d): no *.safetensors weights found (only safetensors is supported; convert .bin/.ckpt first)"
        }
    }
}

/// Where a component's parameters come from: a checkpoint or a seeded random generator.
/// Modules ask for each tensor by its diffusers / transformers name and expected shape.
protocol WeightSource: AnyObject {
    /// The tensor `name` with `shape`. `alternatives` are older names for the same tensor.
    /// A checkpoint tensor whose shape only differs by trailing 1s (1×1 conv kernels stored
    /// for a linear layer and back) is accepted.
    func tensor(_ name: String, _ shape: [Int], alternatives: [String]) throws -> Tensor
    /// A layer weight (linear or convolution kernel) `name` with `shape`, kept as
    /// `precision` says (see `WeightPrecision`); same name and shape rules as `tensor`.
    func weight(_ name: String, _ shape: [Int], alternatives: [String]) throws -> WeightTensor
    /// How this source keeps layer weights.
    var precision: WeightPrecision { get }
    /// Called once every tensor was asked for: reports missing and unexpected ones.
    func finish() throws
    /// Tensors it returned (`parts`) were copied into `views` of a fused tensor
    /// (`LinearWeights.concatenating`); `RegisteringWeightSource` re-points their names.
    func fused(_ parts: [WeightTensor], into views: [WeightTensor])
}

extension WeightSource {
    func tensor(_ name: String, _ shape: [Int]) throws -> Tensor { try tensor(name, shape, alternatives: []) }
    func weight(_ name: String, _ shape: [Int]) throws -> WeightTensor { try weight(name, shape, alternatives: []) }
    /// Sources that keep no names have nothing to re-point.
    func fused(_ parts: [WeightTensor], into views: [WeightTensor]) {}
    /// Sources without 16-bit tensors of their own (random weights): the fp32 tensor, or
    /// its half narrowing for `.f16`.
    func weight(_ name: String, _ shape: [Int], alternatives: [String]) throws -> WeightTensor {
        let t = try tensor(name, shape, alternatives: alternatives)
        return precision == .f16 ? .narrowing(t) : WeightTensor(t)
    }
}

/// Reads a component from its `*.safetensors` files (all of them in the folder: sharded
/// checkpoints work). `tensor` converts to fp32; `weight` keeps layer weights as
/// `precision` says (F16 / BF16 as views of the mapping by default). Missing tensors are
/// collected and reported together; leftover tensors are an error unless `ignoring` matches them.
final class CheckpointWeightSource: WeightSource {
    let component: String
    let precision: WeightPrecision
    private var files: [SafeTensorsFile] = []
    private var owner: [String: Int] = [:]
    private var used = Set<String>()
    private var missing: [String] = []
    private let ignored: (String) -> Bool
    /// A key prefix some writers leave out (transformers 5 saves `CLIPTextModel` without
    /// `text_model.`); a name with it also matches the stored name without it.
    private let optionalPrefix: String?

    init(component: String, files: [SafeTensorsFile], precision: WeightPrecision, optionalPrefix: String? = nil,
         ignoring: @escaping (String) -> Bool = { _ in false }) {
        self.component = component
        self.precision = precision
        self.files = files
        self.optionalPrefix = optionalPrefix
        self.ignored = ignoring
        for (i, f) in files.enumerated() { for name in f.tensors.keys { owner[name] = i } }
    }

    /// Opens every `.safetensors` file in `directory` (a diffusers component folder).
    convenience init(component: String, directory: URL, precision: WeightPrecision, optionalPrefix: String? = nil,
                     ignoring: @escaping (String) -> Bool = { _ in false }) throws {
        let weightFiles = SafeTensorsFile.componentWeightFiles(in: directory)
        guard !weightFiles.isEmpty else { throw WeightError.noWeightFile(directory: directory.path) }
        let files = try weightFiles.map { try SafeTensorsFile(path: $0.path) }
        self.init(component: component, files: files, precision: precision, optionalPrefix: optionalPrefix, ignoring: ignoring)
    }

    private static func squeezed(_ s: [Int]) -> [Int] {
        var s = s
        while s.count > 1, s.last == 1 { s.removeLast() }
        return s
    }

    /// The stored tensor for `name` (marked used, shape checked), nil when missing (recorded).
    private func locate(_ name: String, _ shape: [Int], _ alternatives: [String]) throws -> (SafeTensorsFile, String, SafeTensorInfo)? {
        var candidates = [name] + alternatives
        if let prefix = optionalPrefix {
            candidates += candidates.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        }
        guard let found = candidates.first(where: { owner[$0] != nil }), let fi = owner[found] else {
            missing.append(name)
            return nil
        }
        let file = files[fi]
        guard let info = file.tensors[found] else { missing.append(name); return nil }
        used.insert(found)
        guard info.shape == shape || CheckpointWeightSource.squeezed(info.shape) == CheckpointWeightSource.squeezed(shape) else {
            throw WeightError.wrongShape(component: component, tensor: found, expected: shape, found: info.shape)
        }
        return (file, found, info)
    }

    func tensor(_ name: String, _ shape: [Int], alternatives: [String]) throws -> Tensor {
        guard let (file, found, info) = try locate(name, shape, alternatives) else { return Tensor(zeros: shape) }
        let t = Tensor(zeros: shape)
        let raw = try file.rawBytes(found)
        try SafeTensorsFile.convert(raw, dtype: info.dtype, count: info.elementCount,
                                    into: UnsafeMutableBufferPointer(start: t.data, count: t.count),
                                    file: file.path, tensor: found)
        file.dropPages(found)
        precision.roundParameter(t, storedAs: info.dtype)
        return t
    }

    func weight(_ name: String, _ shape: [Int], alternatives: [String]) throws -> WeightTensor {
        guard let (file, found, info) = try locate(name, shape, alternatives) else { return WeightTensor(Tensor(zeros: shape)) }
        let w = try file.weight(found, info: info, shape: shape, precision: precision)
        if w.halfFormat != nil { mapped[w.storageKey] = (file, found) }
        return w
    }

    /// Mapped 16-bit weights handed out, so that a part copied into a fused tensor can give
    /// its file pages back (the copy is what is computed with).
    private var mapped: [WeightTensor.StorageKey: (SafeTensorsFile, String)] = [:]

    func fused(_ parts: [WeightTensor], into views: [WeightTensor]) {
        for part in parts {
            if let (file, key) = mapped.removeValue(forKey: part.storageKey) { file.dropPages(key) }
        }
    }

    func finish() throws {
        if !missing.isEmpty { throw WeightError.missing(component: component, tensors: missing) }
        let extra = owner.keys.filter { !used.contains($0) && !ignored($0) }.sorted()
        if !extra.isEmpty { throw WeightError.unexpected(component: component, tensors: extra) }
    }
}

extension SafeTensorsFile {
    /// The weight files of a diffusers component folder, in name order: every `*.safetensors`
    /// (sharded checkpoints), the full-precision ones only when the folder also holds
    /// diffusers' `*.fp16.safetensors` variants.
    public static func componentWeightFiles(in directory: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var weightFiles = names.filter { $0.hasSuffix(".safetensors") }.sorted()
        let full = weightFiles.filter { !$0.contains(".fp16.") }
        if !full.isEmpty { weightFiles = full }
        return weightFiles.map { directory.appendingPathComponent($0) }
    }
}

/// Seeded random parameters with PyTorch-like scales (uniform ±1/√fan_in for weights, 1 for
/// norm scales, 0 for biases), so `diffusion-bench` can build real SD shapes without files.
/// Element i of the k-th tensor asked for is a hash of (seed, k, i) — counter-based, so the
/// fill runs in parallel and a seed always gives the same weights.
final class RandomWeightSource: WeightSource {
    private let seed: UInt64
    private var counter: UInt64 = 0
    private let pool: ThreadPool
    /// `.f16` narrows each layer weight as it is made (the fp32 values never all exist at once).
    let precision: WeightPrecision

    init(seed: UInt64, precision: WeightPrecision, pool: ThreadPool) {
        self.seed = seed
        self.precision = precision
        self.pool = pool
    }

    /// SplitMix64's finalizer (Steele et al. 2014) as a hash.
    @inline(__always) static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    func tensor(_ name: String, _ shape: [Int], alternatives: [String]) throws -> Tensor {
        let t = Tensor(zeros: shape)
        counter += 1
        if shape.count == 1 {
            // Norm scales 1, biases 0.
            if name.hasSuffix(".weight") { t.fill(1) }
            return t
        }
        let (key, bound) = parameters(name, shape)
        let p = t.data
        pool.parallelFor(0..<t.count, grain: 1 << 16) { r, _ in
            for i in r { p[i] = RandomWeightSource.value(key, i, bound) }
        }
        precision.roundParameter(t, storedAs: .f32)
        return t
    }

    /// With `.f16`, each layer weight is made in half precision directly (the values
    /// `tensor` gives, rounded to nearest even), so no fp32 copy is ever allocated.
    func weight(_ name: String, _ shape: [Int], alternatives: [String]) throws -> WeightTensor {
        guard precision == .f16, shape.count > 1 else { return WeightTensor(try tensor(name, shape, alternatives: alternatives)) }
        counter += 1
        let (key, bound) = parameters(name, shape)
        let h = HalfStorage(count: Tensor.elementCount(shape), format: .f16)
        let p = h.makeWritable().bindMemory(to: UInt16.self, capacity: h.count)
        pool.parallelFor(0..<h.count, grain: 1 << 16) { r, _ in
            for i in r { p[i] = HalfConversion.float32ToFloat16Bits(RandomWeightSource.value(key, i, bound)) }
        }
        return WeightTensor(half: h, shape: shape)
    }

    /// The hash key and scale of the tensor asked for now: embedding tables get CLIP's init
    /// scale (std 0.02), the rest ±1/√fan_in.
    private func parameters(_ name: String, _ shape: [Int]) -> (UInt64, Float) {
        let fanIn = shape.dropFirst().reduce(1, *)
        let bound = name.contains("embedding") ? Float(0.02 * 1.7320508) : 1 / Float(max(fanIn, 1)).squareRoot()
        return (RandomWeightSource.mix(seed ^ (counter &* 0xD1B5_4A32_D192_ED03)), bound)
    }

    /// Element i: uniform in [-bound, bound).
    @inline(__always) static func value(_ key: UInt64, _ i: Int, _ bound: Float) -> Float {
        let u = Float(mix(key &+ UInt64(i)) >> 40) * (1 / Float(1 << 24))  // [0, 1)
        return (2 * u - 1) * bound
    }

    func finish() throws {}
}
