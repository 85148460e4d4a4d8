import Foundation

/// SDXL's extra conditioning embedding (`addition_embed_type: "text_time"` of diffusers'
/// `UNet2DConditionModel`, read from `unet/config.json`): the pooled text embedding and the
/// six size ids are embedded and added to the timestep embedding.
///
/// diffusers `UNet2DConditionModel.get_aug_embed` for "text_time":
/// `time_embeds = add_time_proj(time_ids.flatten())` with
/// `add_time_proj = Timesteps(addition_time_embed_dim, flip_sin_to_cos, freq_shift)`, reshaped
/// to [N, K · addition_time_embed_dim]; `aug_emb = add_embedding(cat([text_embeds, time_embeds], -1))`
/// with `add_embedding = TimestepEmbedding(projection_class_embeddings_input_dim, time_embed_dim)`.
/// `addition_embed_type_num_heads` is not used by this type.
public struct UNetAdditionEmbeddingConfig: Sendable, Equatable {
    /// `addition_time_embed_dim`: width of each time id's sinusoid (256 in SDXL)
    public var timeEmbedDim: Int
    /// `projection_class_embeddings_input_dim`: in features of `add_embedding.linear_1`,
    /// the pooled text embedding's width plus K × `timeEmbedDim` (2816 = 1280 + 6 · 256 in SDXL)
    public var inputDim: Int

    /// The width `text_embeds` must have when `timeIDCount` time ids are given (SDXL's
    /// pipeline gives 6: original size, crop top-left, target size), or nil when the
    /// config leaves no room for them. StableDiffusionXLPipeline checks the same sum
    /// (`_get_add_time_ids`) against `text_encoder_2`'s `projection_dim`.
    public func textEmbedsWidth(timeIDCount: Int = 6) -> Int? {
        let w = inputDim - timeIDCount * timeEmbedDim
        return w > 0 ? w : nil
    }

    /// nil when `addition_embed_type` is absent or null; throws for any other kind
    /// (text, text_image, image, image_hint: Kandinsky / IF / IP models this engine does not run).
    static func decode(_ c: ConfigJSON) throws -> UNetAdditionEmbeddingConfig? {
        guard c.has("addition_embed_type") else { return nil }
        let kind = try c.string("addition_embed_type")
        guard kind == "text_time" else { throw ModelConfigError.unsupported(file: c.file, field: "addition_embed_type", value: kind) }
        let time = try c.positiveInt("addition_time_embed_dim")
        let input = try c.positiveInt("projection_class_embeddings_input_dim")
        guard input > time else {
            throw ModelConfigError.invalidValue(file: c.file, field: "projection_class_embeddings_input_dim",
                                                reason: "\(input) leaves no room for the text embeddings beside addition_time_embed_dim \(time)")
        }
        return UNetAdditionEmbeddingConfig(timeEmbedDim: time, inputDim: input)
    }
}
