import Foundation
import Kernels
#if canImport(Glibc)
import Glibc
#endif

/// One LoRA of a set: a `.safetensors` file and its multiplier (AUTOMATIC1111's
/// `<lora:name:weight>`, diffusers' adapter weight).
public struct LoRAApplication: Sendable, Equatable {
    public var file: URL
    public var weight: Float
    public init(file: URL, weight: Float) {
        self.file = file
        self.weight = weight
    }
}

/// Merges sets of LoRAs into a loaded UNet and text encoder, reversibly:
///
///     W = W₀ + Σᵢ weightᵢ · scaleᵢ · (upᵢ · downᵢ)
///
/// in fp32, one sgemm per factor pair onto the weight (`C = α·A·B + C`), the conv factors
/// reshaped to [out, r] · [r, in·k·k] (AUTOMATIC1111's `rebuild_conventional`; the same
/// delta peft's `get_delta_weight` merges). Each layer a set touches keeps a copy of its
/// original W₀, so dropping a LoRA restores the original bits exactly. Applying another
/// set rebuilds only the weights the old or the new set touches (restore W₀, add the new
/// deltas); applying the set already in place (same files, unchanged on disk, same
/// weights) does nothing. Layers fused at load (Q/K/V) are written through the parameter
/// registry's row views, so `to_q`'s delta lands in the Q rows.
///
/// A set is checked completely (files, keys, shapes) before any weight changes, so an error
/// leaves the previous set in place. diffusers applies LoRAs unmerged (`set_adapters`,
/// base(x) + scale · B(A(x))): the same function, rounded differently.
///
/// Not thread-safe; one job at a time (the pipeline's contract).
public final class LoRAMerger: @unchecked Sendable {
    /// Counters a caller (and the tests) can watch.
    public struct Statistics: Equatable, Sendable {
        /// Times a new set was merged.
        public var merges = 0
        /// Times the set in place was asked for again and nothing was computed.
        public var reuses = 0
        /// Weight tensors recomputed over all merges.
        public var tensorsRebuilt = 0
    }

    public private(set) var statistics = Statistics()
    /// The set whose deltas are in the weights now.
    public private(set) var applied: [LoRAApplication] = []

    private struct Target: Hashable {
        var component: LoRAComponent
        var module: String
    }
    /// A file as it was when merged: a changed file is a different LoRA.
    private struct FileIdentity: Equatable {
        var path: String
        var device: UInt64, inode: UInt64, size: Int64, modified: Int64, modifiedNanoseconds: Int
    }
    private struct Update {
        var target: Target
        var weight: WeightTensor
        var file: LoRAFile
        var pair: LoRAFactorPair
        var factor: Float
    }

    private let tables: [LoRAComponent: LoRANameTable]
    private let pool: ThreadPool
    private var appliedIdentity: [(FileIdentity, Float)] = []
    /// W₀ of every weight the applied set touches.
    private var originals: [Target: WeightTensor] = [:]

    /// - Parameter aliases: other module names LoRA files may use (see `LoRAModuleAliases`).
    public init(unet: UNet, textEncoder: CLIPTextEncoder, aliases: LoRAModuleAliases = .standard, pool: ThreadPool) {
        tables = [.unet: LoRANameTable(component: .unet, registry: unet.parameters, aliases: aliases),
                  .textEncoder: LoRANameTable(component: .textEncoder, registry: textEncoder.parameters, aliases: aliases)]
        self.pool = pool
    }

    /// Makes `set` the LoRAs in the weights (an empty set restores the model). Throws
    /// `LoRAError` naming the file and key of the first problem; the weights then keep the
    /// previous set.
    public func apply(_ set: [LoRAApplication]) throws {
        let identity = try set.map { (try LoRAMerger.identity($0.file), $0.weight) }
        if identity.count == appliedIdentity.count,
           zip(identity, appliedIdentity).allSatisfy({ $0.0 == $1.0 && $0.1.bitPattern == $1.1.bitPattern }) {
            statistics.reuses += 1
            return
        }
        // Read and check everything first.
        var updates: [Update] = []
        for lora in set {
            let file = try LoRAFile(url: lora.file)
            for pair in file.pairs {
                let (target, weight) = try resolve(pair, in: file)
                try LoRAMerger.checkShapes(pair, of: file, against: weight)
                updates.append(Update(target: target, weight: weight, file: file, pair: pair, factor: lora.weight * pair.scale))
            }
        }
        var byTarget: [Target: [Update]] = [:]
        for u in updates { byTarget[u.target, default: []].append(u) }
        var touched = Set(originals.keys)
        touched.formUnion(byTarget.keys)
        for target in touched.sorted(by: { ($0.component.rawValue, $0.module) < ($1.component.rawValue, $1.module) }) {
            guard let weight = tables[target.component]?.weight(target.module) else { continue }
            if let original = originals[target] {
                weight.copy(from: original)
            }
            guard let list = byTarget[target] else {
                originals[target] = nil
                continue
            }
            if originals[target] == nil {
                let copy = WeightTensor(zeros: weight.shape, format: weight.halfFormat)
                copy.copy(from: weight)
                originals[target] = copy
            }
            for u in list { try add(u) }
        }
        statistics.merges += 1
        statistics.tensorsRebuilt += touched.count
        applied = set
        appliedIdentity = identity
    }

    /// W += factor · up · down (fp32 sgemm, beta 1). A weight kept in 16 bits is widened,
    /// merged in fp32 and rounded back to its format (nearest even), as a half-precision
    /// model's `fuse_lora` rounds; W₀'s bits are kept, so the revert stays exact.
    private func add(_ u: Update) throws {
        let down = try u.file.floats(u.pair.downKey), up = try u.file.floats(u.pair.upKey)
        let rank = u.file.shape(u.pair.downKey)[0]
        let out = u.weight.shape[0], columns = u.weight.count / max(out, 1)
        let target = u.weight.float32 ?? u.weight.widened()
        down.withUnsafeBufferPointer { d in
            up.withUnsafeBufferPointer { p in
                guard let dp = d.baseAddress, let pp = p.baseAddress else { return }
                GEMM.parallelGemm(m: out, n: columns, k: rank, alpha: u.factor, a: pp, lda: rank, b: dp, ldb: columns,
                                  beta: 1, c: target.data, ldc: columns, pool: pool)
            }
        }
        if u.weight.float32 == nil { u.weight.assign(from: target.data) }
    }

    private func resolve(_ pair: LoRAFactorPair, in file: LoRAFile) throws -> (Target, WeightTensor) {
        let components: [LoRAComponent] = pair.component.map { [$0] } ?? [.unet, .textEncoder]
        var found: [(Target, WeightTensor)] = []
        for component in components {
            guard let table = tables[component] else { continue }
            for module in table.modules(for: pair.module) {
                if let weight = table.weight(module) { found.append((Target(component: component, module: module), weight)) }
            }
            if !found.isEmpty { break }
        }
        guard let first = found.first else {
            let shown: String
            switch pair.module {
            case .kohya(let n): shown = (pair.component == .textEncoder ? "lora_te_" : "lora_unet_") + n
            case .dotted(let n): shown = n
            }
            throw LoRAError.unknownModule(file: file.url.path, key: pair.downKey, module: shown)
        }
        guard found.count == 1 else {
            throw LoRAError.ambiguous(file: file.url.path, key: pair.downKey, modules: found.map { $0.0.module })
        }
        return first
    }

    /// down [r, in] / [r, in, kh, kw] and up [out, r] / [out, r, 1, 1] against a weight
    /// [out, in] (linear, or a 1×1 conv stored squeezed) or [out, in, kh, kw].
    private static func checkShapes(_ pair: LoRAFactorPair, of file: LoRAFile, against weight: WeightTensor) throws {
        let down = file.shape(pair.downKey), up = file.shape(pair.upKey)
        // Checked here so that reading the factors cannot fail once weights are being changed.
        for key in [pair.downKey, pair.upKey] {
            guard let dtype = file.file.tensors[key]?.dtype, [.f32, .f16, .bf16, .f64].contains(dtype) else {
                throw LoRAError.badValue(file: file.url.path, key: key, reason: "factors must be floating point (F32, F16, BF16, F64)")
            }
        }
        let w = weight.shape
        let out = w[0], inputs = w[1]
        let kernel = w.count == 4 ? Array(w[2...]) : [1, 1]
        let rank = down.first ?? 0
        let kernelText = kernel == [1, 1] ? "" : ", \(kernel[0]), \(kernel[1])"
        let downOK = down.count >= 2 && down[1] == inputs
            && (down.count == 2 ? kernel == [1, 1] : down.count == 4 && Array(down[2...]) == kernel)
        guard downOK else {
            throw LoRAError.shapeMismatch(file: file.url.path, key: pair.downKey, found: down,
                                          expected: "[rank, \(inputs)\(kernelText)] for the weight \(w)")
        }
        let upOK = (up.count == 2 || (up.count == 4 && up[2] == 1 && up[3] == 1)) && up[0] == out && up[1] == rank
        guard upOK else {
            throw LoRAError.shapeMismatch(file: file.url.path, key: pair.upKey, found: up,
                                          expected: "[\(out), \(rank)] or [\(out), \(rank), 1, 1] for the weight \(w)")
        }
    }

    private static func identity(_ url: URL) throws -> FileIdentity {
        var st = stat()
        guard stat(url.path, &st) == 0 else {
            throw LoRAError.unreadable(file: url.path, reason: String(cString: strerror(errno)))
        }
        return FileIdentity(path: url.path, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                            modified: Int64(st.st_mtim.tv_sec), modifiedNanoseconds: Int(st.st_mtim.tv_nsec))
    }
}
