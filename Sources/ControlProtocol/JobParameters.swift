import Foundation

/// Every parameter that made (or will make) a job's images: the one list that `result.json`
/// records at its top level and that `show` reports as ``JobInfo/parameters``.
///
/// Keys are the job file's (`negative_prompt`, `steps`, …). Only `prompt` and `model` are
/// always present: result files written before the others were recorded still decode.
/// A field added to the job file (`man 5 diffusion-job`) that changes the images is added
/// here too, as an optional.
public struct JobParameters: Codable, Equatable, Sendable {
    /// One LoRA as applied: its name in `lora_dir`, the file read and the weight
    /// (``appendLoRA(name:file:weight:)`` adds one).
    public struct LoRA: Codable, Equatable, Sendable {
        /// Name as the job writes it, without folder or extension.
        public var name: String
        /// Full path of the `.safetensors` file.
        public var file: String
        /// Multiplier of the LoRA's delta.
        public var weight: Float
    }

    /// The prompt as written (`<lora:…>` tags included).
    public var prompt: String
    /// `negative_prompt`; empty when the job has none.
    public var negativePrompt: String?
    /// Model name as configured (`models:` in diffusiond.yaml).
    public var model: String
    /// Image size in pixels: the job's, the config default's or the model's native size.
    public var width: Int?
    public var height: Int?
    /// Denoising steps per image.
    public var steps: Int?
    /// Sampler name as jobs write it (`euler_a`).
    public var sampler: String?
    /// Sigma spacing (`default`, `karras`, `exponential`).
    public var schedule: String?
    /// Classifier-free guidance scale.
    public var guidance: Float?
    /// Seed of the first image; image `i` uses `seed + i`.
    public var seed: UInt64?
    /// Images in the job.
    public var count: Int?
    /// Random generator (`cpu`, `philox`).
    public var rng: String?
    /// A preview every this many steps; 0 = none.
    public var snapshots: Int?
    /// The LoRAs applied, `loras` field first, then prompt tags; absent when none.
    public var loras: [LoRA]?
    /// `tiny` when the images were decoded with the model's tiny VAE (`decoder: tiny`);
    /// absent for the full VAE.
    public var decoder: String?
    /// `chunk` when a prompt over 75 tokens was encoded in AUTOMATIC1111's chunks
    /// (`long_prompt: chunk`); absent for truncation, diffusers' way.
    public var longPrompt: String?
    /// `guidance_cutoff`: the fraction of evaluations that were guided; absent: all.
    public var guidanceCutoff: Double?
    /// img2img: the picture the job started from (its path as read at intake); absent: text-to-image.
    public var initImage: String?
    /// img2img `strength`.
    public var strength: Double?
    /// img2img `resize` rule (`crop`, `fit`, `stretch`).
    public var resize: String?
    /// Inpainting: the mask picture (its path as read at intake).
    public var mask: String?
    /// Inpainting: `mask_blur` in pixels; absent: none.
    public var maskBlur: Double?
    /// Hires fix: the second pass's scale (`upscale`); absent: one pass.
    public var upscale: Double?
    /// Hires fix: the second pass's strength.
    public var upscaleStrength: Double?
    /// Grid: each axis (`x`, `y`) with its field and values, e.g. `{"x": {"sampler": ["euler", "dpm++2m"]}}`;
    /// the images are the cells, row by row. Absent: no grid.
    public var grid: [String: [String: [String]]]?
    /// `cache`: DeepCache's interval (the whole UNet on every Nth evaluation); absent: off.
    public var cache: Int?
    /// `eta`: the sampler's noise amount (euler_a, ddim); absent: the sampler's default.
    public var eta: Double?
    /// `restart`: `[steps, times, sigma_min, sigma_max]`; absent: none.
    public var restart: [Double]?

    enum CodingKeys: String, CodingKey {
        case prompt, negativePrompt = "negative_prompt", model, width, height, steps, sampler, schedule, guidance
        case seed, count, rng, snapshots, loras, decoder, longPrompt = "long_prompt", guidanceCutoff = "guidance_cutoff"
        case initImage = "init_image", strength, resize, mask, maskBlur = "mask_blur"
        case upscale, upscaleStrength = "upscale_strength", grid, cache, eta, restart
    }

    /// Only `prompt` and `model` are always known; the rest are set as the job has them.
    public init(prompt: String, model: String) {
        self.prompt = prompt
        self.model = model
    }

    /// Records one more applied LoRA, after those already in ``loras``.
    public mutating func appendLoRA(name: String, file: String, weight: Float) {
        loras = (loras ?? []) + [LoRA(name: name, file: file, weight: weight)]
    }
}
