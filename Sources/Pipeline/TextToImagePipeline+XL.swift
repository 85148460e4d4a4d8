import Kernels
import Models

extension UNetAdditionalConditioning {
    /// Rows `first ..< first + count` (the conditional half of a guided batch), as views.
    func rows(_ first: Int, count: Int) -> UNetAdditionalConditioning {
        let p = textEmbeds.shape[1], k = timeIDs.shape[1]
        return UNetAdditionalConditioning(textEmbeds: textEmbeds.view(offset: first * p, shape: [count, p]),
                                          timeIDs: timeIDs.view(offset: first * k, shape: [count, k]))
    }
}

/// Text-to-image on an SDXL-family model, as diffusers' `StableDiffusionXLPipeline.__call__`
/// does it with its defaults (`clip_skip`, `guidance_rescale`, `denoising_end` unset; no
/// refiner, no watermark):
///
/// - `encode_prompt`: the prompt through `tokenizer` / `text_encoder` and `tokenizer_2` /
///   `text_encoder_2` (each padded to 77 ids with truncation: a longer prompt is cut, and
///   the `PromptReport` says what was dropped); prompt embeds = `hidden_states[-2]` of each,
///   concatenated on the last axis; pooled = text_encoder_2's `text_embeds`;
/// - with guidance > 1 the negative side likewise, except that no negative prompt on a model
///   with `force_zeros_for_empty_prompt` (SDXL base) gives zero embeds and zero pooled embeds
///   (diffusers' `negative_prompt=None`; a given "", `negativePromptGiven`, is encoded);
/// - `add_time_ids = (height, width, 0, 0, height, width)` for both halves
///   (`_get_add_time_ids` with the default original size, crop and target size);
/// - everything else (latents, sampler loop, guidance, VAE decode with the VAE's own
///   `scaling_factor`) as `StableDiffusionPipeline`, in `denoisedLatents`.
///
/// Not supported on SDXL here, refused with a message: img2img, inpainting, the hires fix,
/// LoRAs, `long_prompt: chunk`. DeepCache (`cache: N`) works as on SD.
extension TextToImagePipeline {
    /// The model family this pipeline runs.
    public var family: ModelFamily { xl == nil ? .stableDiffusion : .stableDiffusionXL }

    /// Throws for what `request` asks that the SDXL pipeline does not do here (checked before
    /// anything runs; the job parser refuses the same at intake when it knows the family).
    func checkXLRequest(_ request: GenerationRequest) throws {
        guard xl != nil else { return }
        var refused: [String] = []
        if request.initImage != nil { refused.append(request.mask == nil ? "img2img (init_image)" : "inpainting (init_image with mask)") }
        if request.hires != nil { refused.append("the hires fix (upscale)") }
        if !request.loras.isEmpty { refused.append("LoRAs") }
        if request.longPrompt == .chunk { refused.append("long_prompt: chunk (SDXL truncates prompts to 77 tokens, as diffusers does)") }
        guard refused.isEmpty else {
            throw PipelineError.invalidRequest("this is an SDXL model, which runs text-to-image only here; not supported on it: "
                                               + refused.joined(separator: ", "))
        }
    }

    /// SDXL's `add_time_ids` for an image of `width` × `height`:
    /// `original_size (h, w) + crops_coords_top_left (0, 0) + target_size (h, w)`.
    public static func addTimeIDs(width: Int, height: Int) -> [Float] {
        [Float(height), Float(width), 0, 0, Float(height), Float(width)]
    }

    /// The prompt embeddings [batch, 77, hidden₁ + hidden₂] and the added conditioning of
    /// `request`, batch rows as `prompts(_:)`: [negative, prompt] with guidance, else [prompt].
    func xlConditioning(_ request: GenerationRequest, xl: XLTextEncoder) throws -> (context: Tensor, added: UNetAdditionalConditioning) {
        let prompts = TextToImagePipeline.prompts(request)
        let first = textEncoder, second = xl.encoder
        let length = tokenizer.maxLength
        let h1 = first.config.hiddenSize, h2 = second.config.hiddenSize, width = h1 + h2
        guard let projection = second.projectionWidth else { throw TextEncoderError.noProjection }
        let context = tensor("context", [prompts.count, length, width])
        let pooled = tensor("text embeds", [prompts.count, projection])
        let timeIDs = tensor("time ids", [prompts.count, 6])
        let part1 = tensor("text_encoder states", [1, length, h1])
        let part2 = tensor("text_encoder_2 states", [1, length, h2])
        let ids = TextToImagePipeline.addTimeIDs(width: request.width, height: request.height)
        for (b, text) in prompts.enumerated() {
            (timeIDs.data + b * 6).update(from: ids, count: 6)
            let row = context.data + b * length * width
            let pooledRow = pooled.view(offset: b * projection, shape: [1, projection])
            let isNegative = request.guidance > 1 && b == 0
            if isNegative && xl.forceZerosForEmptyPrompt && text.isEmpty && !request.negativePromptGiven {
                // encode_prompt: zero_out_negative_prompt → torch.zeros_like(prompt_embeds / pooled).
                row.update(repeating: 0, count: length * width)
                pooledRow.fill(0)
                continue
            }
            try first.encodePenultimate([tokenizer.encodeForModel(text)], output: part1)
            try second.encodePenultimate([xl.tokenizer.encodeForModel(text)], output: part2, pooled: pooledRow)
            // torch.concat(prompt_embeds_list, dim=-1): each token's two states side by side.
            for t in 0..<length {
                (row + t * width).update(from: part1.data + t * h1, count: h1)
                (row + t * width + h1).update(from: part2.data + t * h2, count: h2)
            }
        }
        return (context, UNetAdditionalConditioning(textEmbeds: pooled, timeIDs: timeIDs))
    }
}
