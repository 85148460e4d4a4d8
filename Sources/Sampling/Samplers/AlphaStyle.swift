import Kernels

/// Shared pieces of the alpha-parameterised schedulers (DDIM, DDPM, LCM, TCD).
enum AlphaStyle {
    /// Integer timesteps of DDIM / DDPM `set_timesteps` for each `timestep_spacing`.
    static func integerTimesteps(_ settings: SamplerSettings, steps: Int) throws -> [Int] {
        let train = settings.numTrainTimesteps
        guard steps <= train else {
            throw SamplingError.invalidSteps(sampler: settings.sampler.rawValue, steps: steps,
                                             reason: "more than num_train_timesteps (\(train))")
        }
        switch settings.timestepSpacing {
        case .linspace:
            return NumpyArith.linspace(0, Double(train - 1), steps).map { Int(NumpyArith.round($0)) }.reversed()
        case .leading:
            let ratio = train / steps
            return (0..<steps).reversed().map { $0 * ratio + settings.stepsOffset }
        case .trailing:
            let ratio = Double(train) / Double(steps)
            return NumpyArith.arange(Double(train), 0, -ratio).map { Int(NumpyArith.round($0)) - 1 }
        }
    }

    /// Integer timesteps of `LCMScheduler.set_timesteps` and `TCDScheduler.set_timesteps`
    /// (the same code in diffusers) as StableDiffusionPipeline calls them: strength 1, no
    /// custom timesteps. The distillation schedule `[1 … original] * (train // original) - 1`,
    /// reversed, then `steps` of it at `floor(linspace(0, original, steps, endpoint=False))`.
    static func distillationTimesteps(_ settings: SamplerSettings, steps: Int) throws -> [Int] {
        let original = settings.originalInferenceSteps
        let train = settings.numTrainTimesteps
        guard original <= train, original >= 1 else {
            throw SamplingError.invalidConfig(path: "scheduler_config.json", field: "original_inference_steps",
                                              reason: "\(original) is not within 1…\(train)")
        }
        guard steps <= original else {
            throw SamplingError.invalidSteps(sampler: settings.sampler.rawValue, steps: steps,
                                             reason: "at most original_inference_steps (\(original)) steps")
        }
        let k = train / original
        let origin = (1...original).map { $0 * k - 1 }.reversed().map { $0 }
        let stride = Double(origin.count) / Double(steps)
        return (0..<steps).map { origin[Int((Double($0) * stride).rounded(.down))] }
    }

    /// The predicted original sample x0 from the model output (`pred_original_sample`).
    @inline(__always)
    static func originalSample(_ prediction: PredictionType, sqrtAlpha: Float, sqrtBeta: Float,
                               sample s: FloatLanes, output m: FloatLanes) -> FloatLanes {
        switch prediction {
        case .epsilon: return (s - sqrtBeta * m) / sqrtAlpha
        case .vPrediction: return sqrtAlpha * s - sqrtBeta * m
        case .sample: return m
        }
    }

    /// The predicted noise (`pred_epsilon`) from the model output and the predicted original
    /// sample (`originalSample`, before any clipping), as DDIM and TCD compute it.
    @inline(__always)
    static func predictedNoise(_ prediction: PredictionType, sqrtAlpha: Float, sqrtBeta: Float,
                               sample s: FloatLanes, output m: FloatLanes, originalSample x0: FloatLanes) -> FloatLanes {
        switch prediction {
        case .epsilon: return m
        case .vPrediction: return sqrtAlpha * m + sqrtBeta * s
        case .sample: return (s - sqrtAlpha * x0) / sqrtBeta
        }
    }
}

/// State the alpha-parameterised samplers (DDIM, DDPM, LCM, TCD) share: their resolved config,
/// the training `alphas_cumprod`, a noise buffer allocated once, and a model input that is
/// the sample itself (`scale_model_input` is the identity for these schedulers).
class AlphaSamplerBase: SamplerBase {
    let modelInputDivisor: Float = 1
    let settings: SamplerSettings
    let alphasCumprod: [Float]
    let noiseBuffer: LatentBuffer

    init(kind: SamplerKind, _ settings: SamplerSettings, _ training: TrainingSchedule, count: Int, timesteps: [Float]) {
        self.settings = settings
        alphasCumprod = training.alphasCumprod
        noiseBuffer = LatentBuffer(count: count)
        super.init(kind: kind, elementCount: count, timesteps: timesteps)
    }

    /// `add_noise` of DDIM, DDPM, LCM and TCD: `alphas_cumprod[t] ** 0.5 * original_samples +
    /// (1 - alphas_cumprod[t]) ** 0.5 * noise` at `t = timesteps[step_index]`, in float32.
    override func addNoise(to sample: UnsafeMutableBufferPointer<Float>, noise: UnsafeBufferPointer<Float>) {
        guard let x = sample.baseAddress, let n = noise.baseAddress else { return }
        let alpha = alphasCumprod[Int(timesteps[stepIndex])]
        let sqrtAlpha = alpha.squareRoot(), sqrtBeta = (1 - alpha).squareRoot()
        LaneMaps.map(x, x, n, count: min(sample.count, noise.count)) { s, e in sqrtAlpha * s + sqrtBeta * e }
    }
}
