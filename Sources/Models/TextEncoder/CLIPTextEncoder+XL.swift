import Kernels

/// How SDXL reads its text encoders (diffusers `StableDiffusionXLPipeline.encode_prompt` with
/// `clip_skip=None`): `text_encoder(ids, output_hidden_states=True)`, then
/// `hidden_states[-2]`, the output of the second-to-last encoder layer WITHOUT
/// `final_layer_norm` (unlike `encode(_:clipSkip:output:)`, which normalizes); and, from
/// `text_encoder_2` (`CLIPTextModelWithProjection`), `text_embeds` =
/// `text_projection(final_layer_norm(last_hidden_state)[pooling position])`.
extension CLIPTextEncoder {
    /// Encodes equally long id sequences the SDXL way.
    /// - Parameters:
    ///   - ids: N sequences of L ids
    ///   - output: [N, L, hidden] ← `hidden_states[-2]` (not normalized)
    ///   - pooled: [N, projection_dim] ← `text_embeds`; needs a model loaded with `projection`.
    ///     nil: the last layer is not run.
    public func encodePenultimate(_ ids: [[Int]], output: Tensor, pooled: Tensor? = nil) throws {
        let c = config, n = ids.count, d = c.hiddenSize
        try check(ids, output: output)
        let layerCount = c.numHiddenLayers
        guard let pooled else {
            arena.reset()
            // hidden_states[k] is the state after k layers (0: the embeddings).
            output.copy(from: runLayers(ids, count: layerCount - 1, trace: nil))
            return
        }
        guard let textProjection else { throw TextEncoderError.noProjection }
        guard ids.allSatisfy({ !$0.isEmpty }) else { throw TextEncoderError.emptySequence }
        precondition(pooled.shape == [n, textProjection.outFeatures],
                     "CLIPTextEncoder: pooled \(pooled.shape) is not [\(n), \(textProjection.outFeatures)]")
        arena.reset()
        let last = runLayers(ids, count: layerCount) { k, state in
            if k == layerCount - 1 { output.copy(from: state) }
        }
        // CLIPTextTransformer: final_layer_norm, then the row at each sequence's pooling
        // position. LayerNorm works row by row, so only the pooled rows are normalized.
        let rows = arena.tensor([n, d])
        let length = ids.first?.count ?? 0
        for (b, position) in CLIPTextEncoder.poolingPositions(ids, eosTokenID: c.eosTokenID).enumerated() {
            (rows.data + b * d).update(from: last.data + (b * length + position) * d, count: d)
        }
        let normed = arena.tensor([n, d])
        layerNorm(rows, gamma: finalNorm.weight, beta: finalNorm.bias, eps: c.layerNormEps, output: normed, pool: pool)
        // CLIPTextModelWithProjection: text_embeds = text_projection(pooler_output), no bias.
        linear(normed, weight: textProjection.weight, bias: textProjection.bias, output: pooled, pool: pool)
    }

    /// The position `CLIPTextTransformer.forward` pools each sequence at: with the legacy
    /// `eos_token_id == 2`, `input_ids.argmax(-1)` (the first largest id: the end token in
    /// CLIP's vocabulary); otherwise the first position holding `eos_token_id`, 0 if none
    /// (what argmax of an all-false row gives).
    public static func poolingPositions(_ ids: [[Int]], eosTokenID: Int) -> [Int] {
        ids.map { seq in
            if eosTokenID == 2 {
                var best = 0
                for (i, id) in seq.enumerated() where id > seq[best] { best = i }
                return best
            }
            return seq.firstIndex(of: eosTokenID) ?? 0
        }
    }
}
