import Kernels

/// A fully connected layer, PyTorch layout. The weight is kept in the precision the
/// checkpoint and the model's `weights` setting give it (`WeightTensor`: fp32, or fp16 /
/// bf16 widened inside the kernels); the bias stays fp32.
public struct LinearWeights: @unchecked Sendable {
    /// [outFeatures, inFeatures]
    public var weight: WeightTensor
    /// [outFeatures], absent when the layer has `bias=False`
    public var bias: Tensor?

    public var outFeatures: Int { weight.shape[0] }
    public var inFeatures: Int { weight.shape[1] }

    init(_ source: WeightSource, _ prefix: String, in inF: Int, out outF: Int, bias hasBias: Bool = true,
         alternatives: [String] = []) throws {
        weight = try source.weight(prefix + ".weight", [outF, inF], alternatives: alternatives.map { $0 + ".weight" })
        bias = hasBias ? try source.tensor(prefix + ".bias", [outF], alternatives: alternatives.map { $0 + ".bias" }) : nil
    }

    init(weight: WeightTensor, bias: Tensor?) { self.weight = weight; self.bias = bias }

    init(weight: Tensor, bias: Tensor?) { self.init(weight: WeightTensor(weight), bias: bias) }

    /// Stacks layers with the same input width into one [Σ out, in] layer (fused Q/K/V), so one
    /// GEMM replaces several. The fused weight is kept in the parts' 16-bit format when they
    /// share one (in memory of its own: a fused tensor cannot point into the file), else in
    /// fp32. `source` (which loaded the parts) learns where each part's weight and bias now
    /// live, so the parameter registry names the rows of the fused tensor. `packed`: the fused
    /// weight is then packed as `packedForProducts` packs (for layers only `linear` reads).
    static func concatenating(_ parts: [LinearWeights], source: WeightSource, packed: Bool = false) -> LinearWeights {
        let inF = parts[0].inFeatures
        let outF = parts.reduce(0) { $0 + $1.outFeatures }
        let format = parts[0].weight.halfFormat
        let sameFormat = parts.allSatisfy { $0.weight.halfFormat == format }
        var w = WeightTensor(zeros: [outF, inF], format: sameFormat ? format : nil)
        // Packed from the start: the parts' rows are then packed as they are copied in.
        if packed, let p = w.packedForLinear() { w = p }
        var row = 0
        var weightViews: [WeightTensor] = []
        for p in parts {
            let view = w.view(offset: row * inF, shape: p.weight.shape)
            if sameFormat { view.copy(from: p.weight) } else { view.assign(from: p.weight.widened().data) }
            weightViews.append(view)
            row += p.outFeatures
        }
        source.fused(parts.map(\.weight), into: weightViews)
        // Layers without bias contribute zeros when another part has one.
        var b: Tensor?
        if parts.contains(where: { $0.bias != nil }) {
            let bt = Tensor(zeros: [outF])
            var o = 0
            var biasParts: [WeightTensor] = [], biasViews: [WeightTensor] = []
            for p in parts {
                if let pb = p.bias {
                    let view = bt.view(offset: o, shape: [p.outFeatures])
                    view.copy(from: pb)
                    biasParts.append(WeightTensor(pb))
                    biasViews.append(WeightTensor(view))
                }
                o += p.outFeatures
            }
            source.fused(biasParts, into: biasViews)
            b = bt
        }
        return LinearWeights(weight: w, bias: b)
    }

    /// This layer with its weight packed for `PackedLinear`'s product (`WeightTensor.packedForLinear`:
    /// float32, a multiple of 64 outputs, AVX-512 kernels in use), else itself. Only for layers
    /// that `linear` / `linearAccumulate` alone read: any other product would unpack the weight
    /// block by block on every call. `source` re-points the weight's names to the packed copy
    /// (LoRA merging writes through them) and the separate copy is freed.
    func packedForProducts(source: WeightSource) -> LinearWeights {
        guard let packed = weight.packedForLinear() else { return self }
        source.fused([weight], into: [packed])
        return LinearWeights(weight: packed, bias: bias)
    }

    /// Multiply-adds × 2 for `rows` input rows.
    func flops(rows: Int) -> Double { 2 * Double(rows) * Double(inFeatures) * Double(outFeatures) }
}

/// A 2-D convolution, PyTorch layout; the weight kept as `LinearWeights`' is, the bias fp32.
public struct Conv2DWeights: @unchecked Sendable {
    /// [outChannels, inChannels, kernel, kernel]
    public var weight: WeightTensor
    /// [outChannels]
    public var bias: Tensor

    public var outChannels: Int { weight.shape[0] }
    public var inChannels: Int { weight.shape[1] }
    public var kernel: Int { weight.shape[2] }

    init(_ source: WeightSource, _ prefix: String, in inC: Int, out outC: Int, kernel k: Int) throws {
        weight = try source.weight(prefix + ".weight", [outC, inC, k, k])
        bias = try source.tensor(prefix + ".bias", [outC])
    }

    /// Multiply-adds × 2 for an output of [n, outChannels, h, w].
    func flops(n: Int, h: Int, w: Int) -> Double {
        2 * Double(n * h * w) * Double(outChannels * inChannels * kernel * kernel)
    }
}

/// Affine parameters of a GroupNorm or LayerNorm (always fp32: they are tiny).
public struct NormWeights: @unchecked Sendable {
    /// [channels]
    public var weight: Tensor
    /// [channels]
    public var bias: Tensor

    init(_ source: WeightSource, _ prefix: String, channels c: Int, alternatives: [String] = []) throws {
        weight = try source.tensor(prefix + ".weight", [c], alternatives: alternatives.map { $0 + ".weight" })
        bias = try source.tensor(prefix + ".bias", [c], alternatives: alternatives.map { $0 + ".bias" })
    }
}
