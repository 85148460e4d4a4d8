import Foundation
import Kernels

/// One `CLIPEncoderLayer` (pre-norm): h += out_proj(attn(LN1(h))) with a causal mask;
/// h += fc2(act(fc1(LN2(h)))).
struct CLIPEncoderLayer: @unchecked Sendable {
    /// layer_norm1: [hidden]
    var norm1: NormWeights
    /// self_attn.q_proj, k_proj, v_proj stacked: [3·hidden, hidden] + bias
    var qkv: LinearWeights
    /// self_attn.out_proj: [hidden, hidden] + bias
    var outProj: LinearWeights
    /// layer_norm2: [hidden]
    var norm2: NormWeights
    /// mlp.fc1: [intermediate, hidden] + bias
    var fc1: LinearWeights
    /// mlp.fc2: [hidden, intermediate] + bias
    var fc2: LinearWeights

    init(_ s: WeightSource, _ p: String, _ c: CLIPTextConfig) throws {
        let d = c.hiddenSize
        norm1 = try NormWeights(s, p + ".layer_norm1", channels: d)
        // Every linear layer here is read by `linear` / `linearAccumulate` only: packed at load.
        qkv = LinearWeights.concatenating(try ["q_proj", "k_proj", "v_proj"].map {
            try LinearWeights(s, p + ".self_attn." + $0, in: d, out: d)
        }, source: s, packed: true)
        outProj = try LinearWeights(s, p + ".self_attn.out_proj", in: d, out: d).packedForProducts(source: s)
        norm2 = try NormWeights(s, p + ".layer_norm2", channels: d)
        fc1 = try LinearWeights(s, p + ".mlp.fc1", in: d, out: c.intermediateSize).packedForProducts(source: s)
        fc2 = try LinearWeights(s, p + ".mlp.fc2", in: c.intermediateSize, out: d).packedForProducts(source: s)
    }
}

/// Errors of the text encoder's inputs.
public enum TextEncoderError: Error, CustomStringConvertible, Equatable {
    case tokenOutOfRange(id: Int, vocabularySize: Int)
    case sequenceTooLong(length: Int, maximum: Int)
    case raggedBatch
    case clipSkipOutOfRange(clipSkip: Int, layers: Int)
    case missingProjectionDim
    case noProjection
    case emptySequence

    public var description: String {
        switch self {
        case let .tokenOutOfRange(id, v): return "token id \(id) is outside the text encoder's vocabulary of \(v) (tokenizer and text_encoder do not match)"
        case let .sequenceTooLong(l, m): return "token sequence of \(l) exceeds the text encoder's \(m) positions"
        case .raggedBatch: return "all token sequences of a batch must have the same length"
        case let .clipSkipOutOfRange(k, n): return "clip skip \(k) must be between 0 and \(n - 1)"
        case .missingProjectionDim: return "a CLIPTextModelWithProjection needs projection_dim in its config"
        case .emptySequence: return "pooled output needs at least one token per sequence"
        case .noProjection: return "this text encoder is a CLIPTextModel: it has no text_projection for pooled output"
        }
    }
}

/// transformers `CLIPTextModel`: token + position embeddings, pre-norm encoder layers with
/// causal self-attention, final LayerNorm. Output = `last_hidden_state`, or with
/// `clipSkip = k ≥ 1` diffusers' `final_layer_norm(hidden_states[-(k + 1)])` (AUTOMATIC1111's
/// "CLIP skip k + 1"). No attention mask is applied (as StableDiffusionPipeline calls it).
///
/// Loaded with `projection: true` it is `CLIPTextModelWithProjection` (SDXL's
/// `text_encoder_2`): `encodePenultimate` then also gives `text_embeds`, the final-normed
/// state at the pooling position through `text_projection` (see CLIPTextEncoder+XL.swift).
public final class CLIPTextEncoder: @unchecked Sendable {
    public let config: CLIPTextConfig
    /// text_model.embeddings.token_embedding: [vocab, hidden]
    let tokenEmbedding: WeightTensor
    /// text_model.embeddings.position_embedding: [maxPositions, hidden]
    let positionEmbedding: Tensor
    let layers: [CLIPEncoderLayer]
    /// text_model.final_layer_norm: [hidden]
    let finalNorm: NormWeights
    /// text_projection (`CLIPTextModelWithProjection`, Linear without bias): [projection_dim, hidden];
    /// nil for a `CLIPTextModel`.
    let textProjection: LinearWeights?
    let pool: ThreadPool
    let arena = Arena(minimumChunk: 1 << 20)
    /// Every tensor above by its transformers name, `text_model.` included (LoRA merging
    /// writes through it).
    let parameters: ParameterRegistry

    init(config c: CLIPTextConfig, source: WeightSource, projection: Bool = false, pool: ThreadPool) throws {
        config = c
        let s = RegisteringWeightSource(source)
        parameters = s.registry
        tokenEmbedding = try s.weight("text_model.embeddings.token_embedding.weight", [c.vocabSize, c.hiddenSize])
        positionEmbedding = try s.tensor("text_model.embeddings.position_embedding.weight", [c.maxPositionEmbeddings, c.hiddenSize])
        layers = try (0..<c.numHiddenLayers).map { try CLIPEncoderLayer(s, "text_model.encoder.layers.\($0)", c) }
        finalNorm = try NormWeights(s, "text_model.final_layer_norm", channels: c.hiddenSize)
        if projection {
            guard let width = c.projectionDim else {
                throw TextEncoderError.missingProjectionDim
            }
            textProjection = try LinearWeights(s, "text_projection", in: c.hiddenSize, out: width, bias: false)
        } else {
            textProjection = nil
        }
        self.pool = pool
        try s.finish()
    }

    /// Loads `text_encoder/config.json` and its safetensors. `position_ids` buffers are
    /// ignored; `text_projection` is loaded with `projection` (`CLIPTextModelWithProjection`,
    /// SDXL's `text_encoder_2`), else ignored.
    public convenience init(directory: URL, projection: Bool = false, weights: WeightPrecision = .stored,
                            pool: ThreadPool) throws {
        let config = try CLIPTextConfig(contentsOf: directory.appendingPathComponent("config.json"))
        let source = try CheckpointWeightSource(component: directory.path, directory: directory, precision: weights,
                                                optionalPrefix: "text_model.") { name in
            name.hasSuffix("position_ids") || (!projection && name.hasPrefix("text_projection"))
        }
        do {
            try self.init(config: config, source: source, projection: projection, pool: pool)
        } catch TextEncoderError.missingProjectionDim {
            throw ModelConfigError.missingField(file: directory.appendingPathComponent("config.json").path, field: "projection_dim")
        }
    }

    /// A text encoder of `config`'s shapes with seeded random weights (benchmarks); with
    /// `projection`, a `CLIPTextModelWithProjection` (needs `config.projectionDim`).
    public static func randomWeights(config: CLIPTextConfig, projection: Bool = false, seed: UInt64 = 0,
                                     weights: WeightPrecision = .stored, pool: ThreadPool) throws -> CLIPTextEncoder {
        try CLIPTextEncoder(config: config, source: RandomWeightSource(seed: seed, precision: weights, pool: pool),
                            projection: projection, pool: pool)
    }

    /// Width of `text_embeds` (`projection_dim`) for a `CLIPTextModelWithProjection`; nil for
    /// a `CLIPTextModel`, which has no `text_projection`.
    public var projectionWidth: Int? { textProjection?.outFeatures }

    /// Encodes a batch of equally long token sequences.
    /// - Parameters:
    ///   - ids: N sequences of L ids (L ≤ max_position_embeddings; 77 from `CLIPTokenizer.encodeForModel`)
    ///   - clipSkip: 0 for the last layer; k skips the last k layers
    ///   - output: [N, L, hidden]
    public func encode(_ ids: [[Int]], clipSkip: Int = 0, output: Tensor) throws {
        try run(ids, layersToRun: config.numHiddenLayers - clipSkip, clipSkip: clipSkip, output: output, trace: nil)
    }

    func run(_ ids: [[Int]], layersToRun: Int, clipSkip: Int, output: Tensor, trace: ((Int, Tensor) -> Void)?) throws {
        let c = config
        guard clipSkip >= 0, clipSkip < c.numHiddenLayers else {
            throw TextEncoderError.clipSkipOutOfRange(clipSkip: clipSkip, layers: c.numHiddenLayers)
        }
        try check(ids, output: output)
        arena.reset()
        let h = runLayers(ids, count: layersToRun, trace: trace)
        layerNorm(h, gamma: finalNorm.weight, beta: finalNorm.bias, eps: c.layerNormEps, output: output, pool: pool)
    }

    /// Throws for ids the model cannot read; traps for an `output` that is not [N, L, hidden].
    func check(_ ids: [[Int]], output: Tensor) throws {
        let c = config, n = ids.count
        let l = ids.first?.count ?? 0
        guard ids.allSatisfy({ $0.count == l }) else { throw TextEncoderError.raggedBatch }
        guard l <= c.maxPositionEmbeddings else { throw TextEncoderError.sequenceTooLong(length: l, maximum: c.maxPositionEmbeddings) }
        for seq in ids { for t in seq where t < 0 || t >= c.vocabSize { throw TextEncoderError.tokenOutOfRange(id: t, vocabularySize: c.vocabSize) } }
        precondition(output.shape == [n, l, c.hiddenSize], "CLIPTextEncoder: output \(output.shape) is not [\(n), \(l), \(c.hiddenSize)]")
    }

    /// Embeddings, then the first `count` encoder layers: `hidden_states[count]` [N, L, hidden]
    /// in the arena (no final LayerNorm). The caller has checked `ids` and reset the arena.
    func runLayers(_ ids: [[Int]], count layersToRun: Int, trace: ((Int, Tensor) -> Void)?) -> Tensor {
        let c = config, d = c.hiddenSize, n = ids.count
        let l = ids.first?.count ?? 0
        let h = arena.tensor([n, l, d])
        for (b, seq) in ids.enumerated() {
            for (t, id) in seq.enumerated() {
                let row = h.data + (b * l + t) * d
                tokenEmbedding.view(offset: id * d, shape: [d]).widen(into: row)  // kept in 16 bits like the layers
                vadd(row, positionEmbedding.data + t * d, row, d)
            }
        }
        trace?(0, h)
        let normed = arena.tensor([n, l, d])
        let qkv = arena.tensor([n, l, 3 * d])
        let attended = arena.tensor([n, l, d])
        let mlp = arena.tensor([n, l, c.intermediateSize])
        if trace == nil, let per = sequencesPerCore(batch: n, length: l) {
            // Each core takes its sequences through every layer alone (`ThreadPool.soloPools`),
            // with no hand-off between operators and its activations in its own cache, where
            // splitting each operator over the cores made every one of them wait for both and
            // read the other core's rows. Each core's result is, bit for bit, that of encoding
            // its sequences alone (with packed layers also that of the split operators; sgemm's
            // bits depend on how it blocks the rows).
            let solos = pool.soloPools
            pool.parallelFor(0..<pool.threadCount) { items, _ in
                for item in items {
                    func rows(_ t: Tensor) -> Tensor {
                        t.view(offset: item * per * l * t.shape[2], shape: [per, l, t.shape[2]])
                    }
                    runLayers(count: layersToRun, h: rows(h), normed: rows(normed), qkv: rows(qkv),
                              attended: rows(attended), mlp: rows(mlp), trace: nil, pool: solos[item])
                }
            }
        } else {
            runLayers(count: layersToRun, h: h, normed: normed, qkv: qkv, attended: attended, mlp: mlp, trace: trace,
                      pool: pool)
        }
        return h
    }

    /// Sequences per core when a batch of `batch` sequences of `length` tokens runs each core's
    /// share through the whole encoder on its own (`runLayers`), else nil: only with whole
    /// sequences for every thread (batch 2 on two cores, as `diffusion-bench text --batch 2`
    /// encodes a prompt and its negative; the pipeline encodes each prompt by itself), not
    /// while `OperatorProfile` times the operators (two cores' operators at once would not add
    /// up to the wall time), and not where the whole batch's rows would put a layer on the AMX
    /// tiles and one core's share would not (other bits, and the tiles are the faster there).
    func sequencesPerCore(batch n: Int, length l: Int) -> Int? {
        let threads = pool.threadCount, c = config
        guard threads > 1, n % threads == 0, !OperatorProfile.isEnabled else { return nil }
        let d = c.hiddenSize, shapes = [(d, 3 * d), (d, d), (d, c.intermediateSize), (c.intermediateSize, d)]
        func tiles(_ rows: Int) -> Bool {
            shapes.contains { PackedLinear.runsOnTiles(rows: rows, inFeatures: $0.0, outFeatures: $0.1) }
        }
        let per = n / threads
        return tiles(n * l) == tiles(per * l) ? per : nil
    }

    /// The first `count` encoder layers on `h` [N, L, hidden] in place, with the other
    /// buffers as scratch (`normed` and `attended` [N, L, hidden], `qkv` [N, L, 3·hidden],
    /// `mlp` [N, L, intermediate]), every operator on `pool`.
    private func runLayers(count layersToRun: Int, h: Tensor, normed: Tensor, qkv: Tensor, attended: Tensor,
                           mlp: Tensor, trace: ((Int, Tensor) -> Void)?, pool: ThreadPool) {
        let c = config, d = c.hiddenSize, n = h.shape[0], l = h.shape[1]
        let act: Activation = c.hiddenAct == .gelu ? .gelu : .quickGelu
        let heads = c.numAttentionHeads, headDim = d / heads
        for (i, layer) in layers.prefix(layersToRun).enumerated() {
            layerNorm(h, gamma: layer.norm1.weight, beta: layer.norm1.bias, eps: c.layerNormEps, output: normed, pool: pool)
            linear(normed, weight: layer.qkv.weight, bias: layer.qkv.bias, output: qkv, pool: pool)
            attention(query: AttentionOperand(qkv.data, rowStride: 3 * d),
                      key: AttentionOperand(qkv.data + d, rowStride: 3 * d),
                      value: AttentionOperand(qkv.data + 2 * d, rowStride: 3 * d),
                      output: attended.data, outputRowStride: d, batch: n, heads: heads,
                      queryLength: l, keyLength: l, headDim: headDim, causal: true,
                      scale: 1 / Float(headDim).squareRoot(), pool: pool)
            linearAccumulate(attended, layer.outProj, into: h, pool: pool)
            layerNorm(h, gamma: layer.norm2.weight, beta: layer.norm2.bias, eps: c.layerNormEps, output: normed, pool: pool)
            linear(normed, weight: layer.fc1.weight, bias: layer.fc1.bias, output: mlp, activation: act, pool: pool)
            linearAccumulate(mlp, layer.fc2, into: h, pool: pool)
            trace?(i + 1, h)
        }
    }

    /// Floating-point operations to encode `batch` sequences of `length` tokens.
    public func flops(batch: Int, length: Int) -> Double {
        let rows = batch * length
        return (textProjection?.flops(rows: batch) ?? 0) + layers.reduce(0) {
            $0 + $1.qkv.flops(rows: rows) + $1.outProj.flops(rows: rows) + $1.fc1.flops(rows: rows) + $1.fc2.flops(rows: rows)
                + attentionFlops(batch: batch, heads: config.numAttentionHeads, queryLength: length, keyLength: length,
                                 headDim: config.hiddenSize / config.numAttentionHeads)
        }
    }
}
