import Sampling

/// Everything that decides one text-to-image generation, independent of where it came from
/// (a job file, the command line, a test). Validation of ranges happens in `Jobs`.
public struct GenerationRequest: Sendable, Equatable {
    /// What the image should show.
    public var prompt: String
    /// What the image should not show (unconditional branch of classifier-free guidance).
    public var negativePrompt: String
    /// Whether a negative prompt was given at all, empty or not (diffusers' `negative_prompt=""`
    /// as against `None`): on an SDXL model with `force_zeros_for_empty_prompt`, an empty
    /// negative prompt that was not given means zero embeddings, a given one is encoded.
    public var negativePromptGiven: Bool
    /// Output width in pixels; a multiple of the VAE's downscale factor.
    public var width: Int
    /// Output height in pixels; a multiple of the VAE's downscale factor.
    public var height: Int
    /// Number of denoising steps.
    public var steps: Int
    /// Sampler (diffusers scheduler) to use.
    public var sampler: SamplerKind
    /// Sigma spacing.
    public var schedule: ScheduleKind
    /// Classifier-free guidance scale; at or below 1 the unconditional pass is skipped.
    public var guidance: Float
    /// Seed of the first image; image `i` of a batch uses `seed + i`.
    public var seed: UInt64
    /// Noise generator.
    public var rng: RNGKind
    /// LoRAs merged into the model for this request, in order; empty: the model as loaded.
    /// `prompt` no longer holds AUTOMATIC1111 `<lora:…>` tags (the job parser resolves them).
    public var loras: [LoRASelection]
    /// Autoencoder for the final image (`tiny` needs a pipeline with a tiny VAE).
    public var decoder: DecoderChoice
    /// Prompts over 75 tokens: truncated (diffusers, the default) or chunked (AUTOMATIC1111).
    public var longPrompt: LongPromptMode
    /// `guidance_cutoff`: the fraction of the model evaluations that use classifier-free
    /// guidance; the rest run the conditional prediction alone (batch 1). `nil`: all guided.
    public var guidanceCutoff: Double?
    /// img2img: the picture to start from, already `width` × `height` (the job layer resizes
    /// it); `nil`: text-to-image from pure noise.
    public var initImage: RGBImage?
    /// img2img: how much of the schedule to run on the noised picture, 0…1 (diffusers'
    /// `strength`: the last `Int(steps · strength)` steps run). Unused without `initImage`.
    public var strength: Double
    /// Inpainting: the repaint mask at `width` × `height`, one byte per pixel (white = repaint;
    /// binarised at 128 as diffusers' mask processor does at 0.5); needs `initImage`.
    public var mask: [UInt8]?
    /// Hires fix: a second, upscaled img2img pass (`HiresFix`); the image returned is then
    /// `hires.targetSize` of `width` × `height`.
    public var hires: HiresFix?
    /// `cache`: DeepCache's interval N (see `UNetFeatureCache`): evaluations 0, N, 2N, … run the
    /// whole UNet, the others only its shallow branch with the kept deep feature. `nil` or 1: off.
    public var cache: Int?
    /// `eta` and `restart` (`SamplerOptions`): the sampler's stochastic steps; empty: the
    /// sampler's diffusers class as it is.
    public var samplerOptions: SamplerOptions

    public init(prompt: String, negativePrompt: String = "", width: Int, height: Int, steps: Int,
                sampler: SamplerKind, schedule: ScheduleKind = .default, guidance: Float,
                seed: UInt64, rng: RNGKind = .cpu, loras: [LoRASelection] = [], decoder: DecoderChoice = .full,
                longPrompt: LongPromptMode = .truncate, guidanceCutoff: Double? = nil,
                initImage: RGBImage? = nil, strength: Double = 0.8, mask: [UInt8]? = nil,
                hires: HiresFix? = nil, cache: Int? = nil, negativePromptGiven: Bool = false,
                samplerOptions: SamplerOptions = SamplerOptions()) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.negativePromptGiven = negativePromptGiven
        self.width = width
        self.height = height
        self.steps = steps
        self.sampler = sampler
        self.schedule = schedule
        self.guidance = guidance
        self.seed = seed
        self.rng = rng
        self.loras = loras
        self.decoder = decoder
        self.longPrompt = longPrompt
        self.guidanceCutoff = guidanceCutoff
        self.initImage = initImage
        self.strength = strength
        self.mask = mask
        self.hires = hires
        self.cache = cache
        self.samplerOptions = samplerOptions
    }
}

/// An 8-bit RGB image, rows top to bottom, pixels interleaved `R G B`.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// `width * height * 3` bytes.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage: pixel count does not match size")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// Reported after every denoising step.
public struct StepEvent: Sendable {
    /// 1-based step just finished.
    public var step: Int
    /// Total steps of this image.
    public var totalSteps: Int
    /// A preview of the picture this step predicts (see `TextToImagePipeline`'s step previews),
    /// present only when requested for this step.
    public var preview: RGBImage?

    public init(step: Int, totalSteps: Int, preview: RGBImage?) {
        self.step = step
        self.totalSteps = totalSteps
        self.preview = preview
    }
}

/// What the step callback wants the pipeline to do next.
public enum StepControl: Sendable {
    case proceed
    case cancel
}

/// Thrown when a step callback returned `.cancel`.
public struct GenerationCancelled: Error, CustomStringConvertible {
    public var step: Int
    public init(step: Int) { self.step = step }
    public var description: String { "generation cancelled after step \(step)" }
}
