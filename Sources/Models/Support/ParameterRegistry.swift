import Kernels

/// Every parameter a loaded component computes with, by its diffusers / transformers name
/// (`down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight`), as the tensor the
/// forward pass reads — for layers fused at load (`LinearWeights.concatenating`: Q/K/V) a
/// view of the part's rows in the fused tensor. Writing through an entry changes the model;
/// LoRA merging (`LoRAMerger`) is built on that. Filled while loading by
/// `RegisteringWeightSource`; one per UNet and text encoder.
///
/// Not thread-safe: filled during loading, then read and written by one job at a time.
public final class ParameterRegistry: @unchecked Sendable {
    private var tensors: [String: WeightTensor] = [:]
    /// Names of each registered tensor by where it starts, so a fused layer can re-point its parts.
    private var namesByStorage: [WeightTensor.StorageKey: [String]] = [:]

    init() {}

    /// The tensor `name` (with its `.weight` / `.bias` suffix), nil when the model has none;
    /// layer weights in the precision they are kept in, the rest fp32.
    public subscript(name: String) -> WeightTensor? { tensors[name] }

    /// Every registered name, sorted.
    public var names: [String] { tensors.keys.sorted() }

    func register(_ name: String, _ tensor: WeightTensor) {
        tensors[name] = tensor
        namesByStorage[tensor.storageKey, default: []].append(name)
    }

    /// `part` was copied into `view` (rows of a fused tensor): its names now mean the view,
    /// so the separate copy can be freed and writes reach the tensor that is computed with.
    func rebind(_ part: WeightTensor, to view: WeightTensor) {
        guard let names = namesByStorage.removeValue(forKey: part.storageKey) else { return }
        for name in names { tensors[name] = view }
        namesByStorage[view.storageKey, default: []] += names
    }
}

/// Passes every tensor through from `base` and records it in `registry` under the name it
/// was asked for (the diffusers name; an older alternative the checkpoint used is not kept).
final class RegisteringWeightSource: WeightSource {
    let base: WeightSource
    let registry = ParameterRegistry()

    init(_ base: WeightSource) { self.base = base }

    var precision: WeightPrecision { base.precision }

    func tensor(_ name: String, _ shape: [Int], alternatives: [String]) throws -> Tensor {
        let t = try base.tensor(name, shape, alternatives: alternatives)
        registry.register(name, WeightTensor(t))
        return t
    }

    func weight(_ name: String, _ shape: [Int], alternatives: [String]) throws -> WeightTensor {
        let w = try base.weight(name, shape, alternatives: alternatives)
        registry.register(name, w)
        return w
    }

    func finish() throws { try base.finish() }

    func fused(_ parts: [WeightTensor], into views: [WeightTensor]) {
        for (part, view) in zip(parts, views) { registry.rebind(part, to: view) }
        base.fused(parts, into: views)
    }
}
