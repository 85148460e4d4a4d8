import Foundation
import Kernels
import Models
import Sampling

/// How step previews (`snapshotEvery`) are drawn. A preview shows the denoised image the
/// model predicts at that step (diffusers' `pred_original_sample`, AUTOMATIC1111's and
/// ComfyUI's `x0` / "denoised" preview), not the noisy latents, so it converges on the final
/// image: at the last step it is the final image, up to the decoder used.
public enum StepPreviewMethod: String, Sendable {
    /// The model's tiny autoencoder (`tiny_vae`): close to the final image at a small cost.
    case tinyVAE = "tiny_vae"
    /// The model's own VAE, when one decode costs at most `fullVAECostLimit` of a UNet step.
    case fullVAE = "vae"
    /// A fixed linear latent → RGB map (`LatentRGBMap`: the model's own fitted one, else the
    /// published map of its latent space), upscaled: blocky, but free.
    case latentRGB = "latent_rgb"
}

extension TextToImagePipeline {
    /// Largest cost of the full-VAE previews, as a fraction of the UNet work they are spread
    /// over (`snapshotEvery` denoising steps; FLOPs counted as `diffusion-bench` counts them).
    /// A decode of the built-in `models/shapes` costs 0.85 of a guided UNet step at 64×64,
    /// so its VAE draws previews from `snapshots: 4` on; SD 1.5's costs 1.56 steps at 512×512
    /// (from `snapshots: 7` on).
    public static let fullVAECostLimit = 0.25

    /// Loads a diffusers `AutoencoderTiny` folder (TAESD) for previews and `decoder: tiny`;
    /// its latent channels and downscale factor must be the model VAE's.
    public func loadTinyVAE(directory: URL) throws {
        let tiny = try TinyVAE(directory: directory, pool: pool)
        let wanted = (channels: vae.config.latentChannels, factor: vae.downscaleFactor)
        guard tiny.config.latentChannels == wanted.channels, tiny.downscaleFactor == wanted.factor else {
            throw PipelineError.incompatibleTinyVAE(
                directory: directory.path,
                reason: "it has \(tiny.config.latentChannels) latent channels and factor \(tiny.downscaleFactor), "
                    + "the model's VAE \(wanted.channels) and \(wanted.factor)")
        }
        tinyVAE = tiny
    }

    /// Whether a tiny VAE is loaded (`decoder: tiny` and tiny-VAE previews need one).
    public var hasTinyVAE: Bool { tinyVAE != nil }

    /// How this pipeline draws step previews for `request` every `snapshotEvery` steps: the
    /// tiny VAE if there is one, else the full VAE when one decode costs at most
    /// `fullVAECostLimit` of the UNet FLOPs of `snapshotEvery` steps at the request's size
    /// (one call on a batch of 2 with guidance), else the linear latent map.
    public func previewMethod(for request: GenerationRequest, snapshotEvery: Int) -> StepPreviewMethod {
        if tinyVAE != nil { return .tinyVAE }
        let factor = vae.downscaleFactor
        let h = max(1, request.height / factor), w = max(1, request.width / factor)
        let decode = vae.decodeFlops(batch: 1, height: h, width: w)
        let step = unet.flops(batch: request.guidance > 1 ? 2 : 1, height: h, width: w)
        return decode <= Self.fullVAECostLimit * step * Double(max(1, snapshotEvery)) ? .fullVAE : .latentRGB
    }

    /// Draws the preview of the denoised estimate `x0` ([1, C, h, w] pipeline latents).
    func renderPreview(_ x0: Tensor, method: StepPreviewMethod, width: Int, height: Int) -> RGBImage {
        if method == .tinyVAE, let tinyVAE {
            let decoded = tensor("tiny decoded", [1, tinyVAE.config.outChannels, height, width])
            tinyVAE.decodeScaled(x0, output: decoded)
            return ImageConversion.rgbImage(decoded)
        }
        if method == .fullVAE { return decode(x0, width: width, height: height) }
        return latentRGBMap.render(x0, factor: vae.downscaleFactor)
    }

    /// The latent → RGB preview map: the model's own fitted one (`vae/latent_rgb.json`), else
    /// the published map of its latent space.
    var latentRGBMap: LatentRGBMap {
        if let fittedLatentRGBMap { return fittedLatentRGBMap }
        // An SDXL-family model's latents are SDXL's, whatever its VAE's scaling factor says.
        return family == .stableDiffusionXL && vae.config.latentChannels == 4 ? LatentRGBMap.sdxl
            : LatentRGBMap.forVAE(latentChannels: vae.config.latentChannels, scalingFactor: vae.config.scalingFactor)
    }
}

/// The model's estimate of the clean latents at one evaluation (diffusers'
/// `pred_original_sample`), from the sampler's model input, which is the alpha-space sample
/// `√ᾱ·x₀ + √(1 − ᾱ)·ε` for every sampler (sigma-space samples are divided by √(σ² + 1) by
/// `scale_model_input`), and the guided model output:
/// epsilon: x₀ = (x − √(1 − ᾱ)·ε) / √ᾱ; v: x₀ = √ᾱ·x − √(1 − ᾱ)·v; sample: the output.
/// ᾱ is 1 / (1 + σ²) for the sigma samplers (σ of the current step) and `alphas_cumprod[t]`
/// for the others.
struct DenoisedEstimate {
    let prediction: PredictionType
    /// The sampler's sigmas; empty for the alpha samplers.
    let sigmas: [Float]
    /// `alphas_cumprod`, for the alpha samplers only.
    let alphasCumprod: [Float]

    init(prediction: PredictionType, sigmas: [Float], alphasCumprod: [Float]) {
        self.prediction = prediction
        self.sigmas = sigmas
        self.alphasCumprod = alphasCumprod
    }

    init(settings: SamplerSettings, sampler: DiffusionSampler) throws {
        self.init(prediction: settings.predictionType, sigmas: sampler.sigmas,
                  alphasCumprod: sampler.sigmas.isEmpty ? try TrainingSchedule(settings: settings).alphasCumprod : [])
    }

    func alphaBar(stepIndex: Int, timestep: Float) -> Float {
        if !sigmas.isEmpty {
            let sigma = sigmas[min(stepIndex, sigmas.count - 1)]
            return 1 / (1 + sigma * sigma)
        }
        guard !alphasCumprod.isEmpty else { return 1 }
        let t = min(max(Int(timestep.rounded()), 0), alphasCumprod.count - 1)
        return alphasCumprod[t]
    }

    /// Writes x₀ for `modelInput` and `modelOutput` (same count as `output`).
    func write(modelInput: UnsafeBufferPointer<Float>, modelOutput: UnsafeBufferPointer<Float>,
               stepIndex: Int, timestep: Float, into output: Tensor) {
        let alphaBar = alphaBar(stepIndex: stepIndex, timestep: timestep)
        let a = alphaBar.squareRoot(), b = max(0, 1 - alphaBar).squareRoot()
        let out = output.data
        for i in 0..<min(output.count, modelInput.count, modelOutput.count) {
            let x = modelInput[i], m = modelOutput[i]
            switch prediction {
            case .epsilon: out[i] = a > 1e-3 ? (x - b * m) / a : x  // ᾱ ≈ 0 (zero terminal SNR): no estimate
            case .vPrediction: out[i] = a * x - b * m
            case .sample: out[i] = m
            }
        }
    }
}
