import Foundation
import Kernels
import Models
import Sampling

/// Errors raised while loading a model folder or generating.
public enum PipelineError: Error, CustomStringConvertible {
    /// The request does not fit the model (size, steps, sampler config).
    case invalidRequest(String)
    /// A `tiny_vae` folder whose latents do not fit the model's.
    case incompatibleTinyVAE(directory: String, reason: String)

    public var description: String {
        switch self {
        case .invalidRequest(let why): return "invalid generation request: \(why)"
        case let .incompatibleTinyVAE(directory, reason): return "tiny_vae \(directory) does not fit this model: \(reason)"
        }
    }
}

/// Text-to-image over a diffusers-layout model folder (tokenizer → text encoder →
/// sampler loop over the UNet with classifier-free guidance → VAE decode), reproducing
/// diffusers' `StableDiffusionPipeline.__call__` with
/// `generator=torch.Generator("cpu").manual_seed(seed)`:
///
/// - prompt and negative prompt tokenized to 77 ids (truncated), encoded one at a time
///   (`encode_prompt`; a missing negative prompt encodes ""); with `longPrompt: .chunk`
///   AUTOMATIC1111's 75-token chunks instead (`LongPromptMode`, TextToImagePipeline+Prompt);
/// - latents `randn([1, C, H/f, W/f])` from the seeded generator times
///   `init_noise_sigma` (`prepare_latents`);
/// - each step: `scale_model_input`, one UNet call on the batch [uncond, cond] when
///   guidance > 1 (`noise = uncond + g * (cond - uncond)`), cond only otherwise, then the
///   scheduler `step` drawing its noise from the same generator;
/// - `vae.decode(latents / scaling_factor)`, then `(x / 2 + 0.5).clamp(0, 1) * 255`
///   rounded half to even, as the image processor and `numpy_to_pil` do; with
///   `decoder: .tiny`, the same with the model's `AutoencoderTiny` as `vae` (`loadTinyVAE`).
///
/// Step previews (`snapshotEvery`) decode the model's denoised estimate of that step
/// (`pred_original_sample`) with the tiny VAE, the full VAE or a linear map (`StepPreview.swift`).
///
/// LoRAs: `request.loras` are merged into the weights before the text encoder runs, as
/// `pipe.load_lora_weights(file); pipe.set_adapters([…], adapter_weights=[…])` would apply
/// them (`LoRAMerger`; the set stays merged until a request asks for another).
///
/// With `request.initImage`, image-to-image as `StableDiffusionImg2ImgPipeline`
/// (TextToImagePipeline+Img2Img); with a `mask` too, inpainting as
/// `StableDiffusionInpaintPipeline`, on inpainting (9-channel) and ordinary UNets
/// (TextToImagePipeline+Inpaint).
///
/// `cache: N` runs DeepCache (Ma et al. 2023): the whole UNet on evaluations 0, N, 2N, …, its
/// shallow branch with the kept deep feature on the others (`UNetFeatureCache`).
///
/// On an SDXL-family model it is `StableDiffusionXLPipeline` (text-to-image; TextToImagePipeline+XL).
///
/// Leaves out: guidance_rescale, clip_skip, IP adapters, the safety checker.
/// Not reentrant: one pipeline per concurrent job.
public final class TextToImagePipeline: ImageGenerating {
    /// Folder the model was loaded from.
    public let modelDirectory: URL
    /// `scheduler/scheduler_config.json`.
    public let schedulerConfig: SchedulerConfig
    let tokenizer: CLIPTokenizer
    let textEncoder: CLIPTextEncoder
    let unet: UNet
    let vae: VAE
    /// SDXL's second text encoder and tokenizer; nil for SD 1.x/2.x (TextToImagePipeline+XL).
    let xl: XLTextEncoder?
    /// diffusers `AutoencoderTiny` for previews and `decoder: tiny` (`loadTinyVAE`).
    var tinyVAE: TinyVAE?
    /// The model's own fitted latent → RGB preview map (`vae/latent_rgb.json`), if it has one.
    let fittedLatentRGBMap: LatentRGBMap?
    let pool: ThreadPool

    /// Loads every component of the diffusers folder at `modelDirectory` (see
    /// `StableDiffusionModel`) and its scheduler config, using `threads` cores; layer
    /// weights kept as `weights` says.
    public init(modelDirectory: URL, weights: WeightPrecision = .stored, threads: Int) throws {
        self.modelDirectory = modelDirectory
        let pool = ThreadPool(threadCount: max(1, threads))
        self.pool = pool
        // Both throw typed errors that name the folder, file or tensor at fault.
        let model = try StableDiffusionModel(directory: modelDirectory, weights: weights, pool: pool)
        schedulerConfig = try SchedulerConfig(contentsOf: model.schedulerConfigURL)
        tokenizer = model.tokenizer
        textEncoder = model.textEncoder
        unet = model.unet
        vae = model.vae
        xl = model.xl
        fittedLatentRGBMap = try LatentRGBMap(vaeDirectory: modelDirectory.appendingPathComponent("vae"),
                                              latentChannels: model.vae.config.latentChannels)
    }

    /// Assembles a pipeline from a loaded model and its scheduler config (single-file
    /// checkpoints, whose scheduler config is not a file).
    init(model: StableDiffusionModel, schedulerConfig: SchedulerConfig, pool: ThreadPool) {
        modelDirectory = model.directory
        self.pool = pool
        self.schedulerConfig = schedulerConfig
        tokenizer = model.tokenizer
        textEncoder = model.textEncoder
        unet = model.unet
        vae = model.vae
        xl = model.xl
        fittedLatentRGBMap = nil
    }
    /// Merges the requests' LoRAs into `unet` and `textEncoder` (see TextToImagePipeline+LoRA).
    public private(set) lazy var loraMerger = LoRAMerger(unet: unet, textEncoder: textEncoder, pool: pool)
    /// File hashes for the image metadata, computed once per file (see TextToImagePipeline+LoRA).
    var hashes = FileHashCache()

    /// DeepCache's kept feature for `cache: N` requests; its buffer lives as long as the pipeline.
    let featureCache = UNetFeatureCache()

    /// Job buffers by role, reused while the shapes stay the same (all images of a job), so
    /// a `count` of images allocates them once.
    private var buffers: [String: Tensor] = [:]

    func tensor(_ role: String, _ shape: [Int]) -> Tensor {
        if let existing = buffers[role], existing.shape == shape { return existing }
        let fresh = Tensor(zeros: shape)
        buffers[role] = fresh
        return fresh
    }

    /// Pixels per latent cell (8 for Stable Diffusion).
    public var downscaleFactor: Int { vae.downscaleFactor }

    public func generate(_ request: GenerationRequest, snapshotEvery: Int,
                         onStep: (StepEvent) -> StepControl) throws -> RGBImage {
        if request.decoder == .tiny && tinyVAE == nil {
            throw PipelineError.invalidRequest("decoder tiny needs a tiny_vae for this model")
        }
        try checkXLRequest(request)
        if request.samplerOptions.restart != nil && (request.initImage != nil || request.hires != nil) {
            // img2img begins at a main step (`t_start * order`), which restart evaluations would shift.
            throw PipelineError.invalidRequest("restart segments are for text-to-image without the hires fix")
        }
        if let hires = request.hires {
            // Hires fix (HiresFix.swift): this request without it, upscaled, then img2img.
            var first = request
            first.hires = nil
            return try generateHires(first, hires: hires, snapshotEvery: snapshotEvery, onStep: onStep)
        }
        let latents = try denoisedLatents(request, snapshotEvery: snapshotEvery, onStep: onStep)
        if request.decoder == .tiny, let tinyVAE {
            // StableDiffusionPipeline with vae=AutoencoderTiny: vae.decode(latents / scaling_factor).
            let decoded = tensor("tiny decoded", [1, tinyVAE.config.outChannels, request.height, request.width])
            tinyVAE.decodeScaled(latents, output: decoded)
            return ImageConversion.rgbImage(decoded)
        }
        return decode(latents, width: request.width, height: request.height)
    }

    /// Runs everything up to the VAE: returns the final latents [1, C, H/f, W/f]
    /// (diffusers' `latents` before `/ scaling_factor`).
    func denoisedLatents(_ request: GenerationRequest, snapshotEvery: Int,
                         onStep: (StepEvent) -> StepControl) throws -> Tensor {
        let factor = vae.downscaleFactor
        guard request.width > 0, request.height > 0, request.width % factor == 0, request.height % factor == 0 else {
            throw PipelineError.invalidRequest("width \(request.width) and height \(request.height) must be positive multiples of \(factor)")
        }
        guard request.steps >= 1 else { throw PipelineError.invalidRequest("steps must be at least 1, got \(request.steps)") }
        let settings: SamplerSettings
        let sampler: DiffusionSampler
        // An inpainting UNet reads [latents, mask, masked-image latents] (2C + 1 channels).
        let unetChannels = unet.config.inChannels
        let inpaintingUNet = unetChannels == 2 * vae.config.latentChannels + 1
        let channels = inpaintingUNet ? vae.config.latentChannels : unetChannels
        if inpaintingUNet && request.mask == nil {
            throw PipelineError.invalidRequest("this model's UNet is an inpainting UNet (\(unetChannels) input channels): a job on it needs init_image and mask")
        }
        if request.mask != nil && request.initImage == nil {
            throw PipelineError.invalidRequest("a mask needs an init image")
        }
        let latentHeight = request.height / factor, latentWidth = request.width / factor
        let latentCount = channels * latentHeight * latentWidth
        do {
            var resolved = try SamplerSettings(sampler: request.sampler, config: schedulerConfig, schedule: request.schedule)
            resolved.options = request.samplerOptions
            settings = resolved
            sampler = try makeSampler(settings, steps: request.steps, elementCount: latentCount)
        } catch {
            throw PipelineError.invalidRequest("\(error)")
        }

        // The request's LoRAs (diffusers: load_lora_weights + set_adapters) before anything runs.
        try loraMerger.apply(request.loras.map { LoRAApplication(file: $0.file, weight: $0.weight) })

        // Text conditioning, [uncond, cond] when guidance applies.
        // 77 rows per prompt, or 77 per chunk with `long_prompt: chunk` (TextToImagePipeline+Prompt).
        let guided = request.guidance > 1
        let batch = guided ? 2 : 1
        // SDXL: two encoders' penultimate states, plus pooled embeds and time ids (TextToImagePipeline+XL).
        let context: Tensor
        var added: UNetAdditionalConditioning?
        if let xl {
            (context, added) = try xlConditioning(request, xl: xl)
        } else {
            context = try conditioning(request)
        }

        let generator = makeNoiseGenerator(request.rng, seed: request.seed)
        let latents = tensor("latents", [1, channels, latentHeight, latentWidth])
        let latentBuffer = UnsafeMutableBufferPointer(start: latents.data, count: latentCount)
        var inpaint: InpaintState?
        if let initImage = request.initImage, let mask = request.mask {
            // Inpainting (TextToImagePipeline+Inpaint).
            inpaint = try startInpainting(request, image: initImage, mask: mask, sampler: sampler, generator: generator,
                                          latents: latents, unetChannels: unetChannels)
        } else if let initImage = request.initImage {
            // img2img (TextToImagePipeline+Img2Img): the noised image, part-way into the schedule.
            try startFromImage(initImage, strength: request.strength, steps: request.steps, sampler: sampler,
                               generator: generator, latents: latents)
        } else {
            // prepare_latents: one randn call on the generator, times init_noise_sigma.
            generator.fillNormal(latentBuffer)
            let initSigma = sampler.initNoiseSigma
            for i in 0..<latentCount { latentBuffer[i] *= initSigma }
        }
        // Evaluations before this one are skipped (img2img); step numbers, previews and the
        // guidance cutoff count from here, as the pipeline's loop over the sliced timesteps does.
        let firstIndex = sampler.stepIndex

        // Buffers of the denoise closure, allocated once per image.
        let unetInput = tensor("unet input", [batch, unetChannels, latentHeight, latentWidth])
        let unetOutput = tensor("unet output", [batch, channels, latentHeight, latentWidth])
        let guidance = request.guidance
        // guidance_cutoff, as diffusers' documented `callback_on_step_end` recipe does it: after
        // the evaluation with index int(num_timesteps * cutoff) it sets guidance_scale to 0 and
        // keeps the conditional half of prompt_embeds, so later evaluations are cond-only (batch 1).
        let lastGuided = request.guidanceCutoff.map { Int(Double(sampler.timesteps.count - firstIndex) * $0) } ?? Int.max
        let condInput = unetInput.view(offset: 0, shape: [1, unetChannels, latentHeight, latentWidth])
        // One batch entry of the UNet input: the model input, then (inpainting UNet) mask and masked-image latents.
        let inputStride = unetChannels * latentHeight * latentWidth
        let plane = latentHeight * latentWidth
        let extra: (mask: UnsafeMutablePointer<Float>, masked: UnsafeMutablePointer<Float>)? =
            inpaintingUNet ? inpaint.map { ($0.latentMask.data, $0.maskedImageLatents.data) } : nil
        func fillInput(_ entry: Int, from source: UnsafePointer<Float>) {
            let destination = unetInput.data + entry * inputStride
            destination.update(from: source, count: latentCount)
            if let extra {
                (destination + latentCount).update(from: extra.mask, count: plane)
                (destination + latentCount + plane).update(from: extra.masked, count: latentCount)
            }
        }
        let condOutput = unetOutput.view(offset: 0, shape: [1, channels, latentHeight, latentWidth])
        let condContext = context.view(offset: guided ? context.count / 2 : 0, shape: [1, context.shape[1], context.shape[2]])
        // Step previews show the denoised estimate of the evaluation that ends a snapshot step.
        let estimate = snapshotEvery > 0 ? try DenoisedEstimate(settings: settings, sampler: sampler) : nil
        let previewLatents = tensor("preview latents", latents.shape)
        let previewMethod = previewMethod(for: request, snapshotEvery: snapshotEvery)
        // cache: N (DeepCache, uniform): evaluation i runs the whole UNet when i % N == 0 and
        // keeps its deep feature; the others run the shallow branch on the kept feature.
        let cacheInterval = request.cache ?? 1
        let deepCache = cacheInterval > 1 ? featureCache : nil
        deepCache?.reset()
        // SDXL's added conditioning, its conditional row for the cond-only evaluations.
        let condAdded = added.map { guided ? $0.rows(1, count: 1) : $0 }
        let evaluate = { [unet] (sample: Tensor, timestep: Float, context: Tensor, added: UNetAdditionalConditioning?,
                                 output: Tensor, index: Int) in
            guard let deepCache else {
                unet(sample: sample, timestep: timestep, context: context, added: added, output: output)
                return
            }
            let rows = sample.shape[0]
            let step: UNetCacheStep = index % cacheInterval == 0 || deepCache.batch < rows
                ? .full(deepCache)
                // After a guided batch [uncond, cond], a cond-only batch reuses the last row.
                : .shallow(deepCache, firstRow: deepCache.batch - rows)
            unet(sample: sample, timestep: timestep, context: context, added: added, output: output, cache: step)
        }
        let denoise: DenoiseFunction = { input, timestep, output in
            guard let source = input.baseAddress, let destination = output.baseAddress else { return }
            let index = sampler.stepIndex - firstIndex
            if guided && index > lastGuided {
                fillInput(0, from: source)
                evaluate(condInput, timestep, condContext, condAdded, condOutput, index)
                destination.update(from: condOutput.data, count: latentCount)
            } else if guided {
                for b in 0..<batch { fillInput(b, from: source) }
                evaluate(unetInput, timestep, context, added, unetOutput, index)
                let uncond = unetOutput.data, cond = unetOutput.data + latentCount
                classifierFreeGuidance(uncond: uncond, cond: cond, scale: guidance, output: destination, count: latentCount)
            } else {
                fillInput(0, from: source)
                evaluate(unetInput, timestep, context, added, unetOutput, index)
                destination.update(from: unetOutput.data, count: latentCount)
            }
            if let estimate, (index + 1) % snapshotEvery == 0 {
                estimate.write(modelInput: input, modelOutput: UnsafeBufferPointer(output), stepIndex: sampler.stepIndex,
                               timestep: timestep, into: previewLatents)
            }
        }

        let totalSteps = sampler.timesteps.count - firstIndex
        try sample(sampler, latents: latentBuffer, noise: generator, denoise: denoise) { absoluteStep in
            let step = absoluteStep - firstIndex
            if let inpaint { restoreUnmasked(inpaint, sampler: sampler, latents: latents) }
            var image: RGBImage?
            if snapshotEvery > 0 && step % snapshotEvery == 0 {
                image = renderPreview(previewLatents, method: previewMethod, width: request.width, height: request.height)
            }
            if onStep(StepEvent(step: step, totalSteps: totalSteps, preview: image)) == .cancel {
                throw GenerationCancelled(step: step)
            }
        }

        return latents
    }

    /// `vae.decode(latents / scaling_factor)` → uint8 RGB.
    func decode(_ latents: Tensor, width: Int, height: Int) -> RGBImage {
        let latentCount = latents.count
        let scaled = tensor("scaled latents", latents.shape)
        let scalingFactor = vae.config.scalingFactor
        for i in 0..<latentCount { scaled.data[i] = latents.data[i] / scalingFactor }
        if vae.config.shiftFactor != 0 {
            for i in 0..<latentCount { scaled.data[i] += vae.config.shiftFactor }
        }
        let decoded = tensor("decoded", [1, vae.config.outChannels, height, width])
        vae.decode(scaled, output: decoded)
        return ImageConversion.rgbImage(decoded)
    }
}

/// `noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)`, rounded
/// step by step like the torch expression (no FMA; see `LaneMaps`).
func classifierFreeGuidance(uncond: UnsafePointer<Float>, cond: UnsafePointer<Float>, scale: Float,
                            output: UnsafeMutablePointer<Float>, count: Int) {
    LaneMaps.map(output, uncond, cond, count: count) { u, c in u + scale * (c - u) }
}
