import Kernels

/// Shared pieces of the alpha-parameterised schedulers (DDIM, DDPM, LCM).
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
}

/// diffusers `DDIMScheduler` (Song et al. 2021, eq. 12) with `eta` (0 in
/// StableDiffusionPipeline, so deterministic; eta > 0 draws noise from the generator).
///
/// Reads beta schedule, prediction type (epsilon, v_prediction, sample), clip_sample and
/// clip_sample_range, set_alpha_to_one, timestep spacing, steps_offset and
/// rescale_betas_zero_snr. Leaves out: thresholding, use_clipped_model_output.
final class DDIMSampler: DiffusionSampler {
    let kind = SamplerKind.ddim
    let elementCount: Int
    let timesteps: [Float]
    let sigmas: [Float] = []
    let initNoiseSigma: Float = 1
    let modelInputDivisor: Float = 1
    private(set) var stepIndex = 0
    /// DDIM's eta (0 = deterministic, as StableDiffusionPipeline's default).
    var eta: Float = 0
    private let settings: SamplerSettings
    private let alphasCumprod: [Float]
    private let finalAlphaCumprod: Float
    private let stepSize: Int
    private let noiseBuffer: LatentBuffer

    init(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int, count: Int) throws {
        elementCount = count
        self.settings = settings
        alphasCumprod = training.alphasCumprod
        finalAlphaCumprod = settings.setAlphaToOne ? 1 : training.alphasCumprod[0]
        timesteps = try AlphaStyle.integerTimesteps(settings, steps: steps).map { Float($0) }
        stepSize = settings.numTrainTimesteps / steps
        noiseBuffer = LatentBuffer(count: count)
    }

    /// `_get_variance(t, prev_t)`.
    func variance(timestep: Int, previousTimestep: Int) -> Float {
        let alphaT = alphasCumprod[timestep]
        let alphaPrev = previousTimestep >= 0 ? alphasCumprod[previousTimestep] : finalAlphaCumprod
        let betaT = 1 - alphaT
        let betaPrev = 1 - alphaPrev
        return betaPrev / betaT * (1 - alphaT / alphaPrev)
    }

    func step(modelOutput: UnsafeBufferPointer<Float>, sample: UnsafeMutableBufferPointer<Float>,
              noise: NoiseGenerator) throws {
        guard let out = modelOutput.baseAddress, let x = sample.baseAddress, stepIndex < timesteps.count else { return }
        let t = Int(timesteps[stepIndex])
        let previousT = t - stepSize
        let alphaT = alphasCumprod[t]
        let alphaPrev = previousT >= 0 ? alphasCumprod[previousT] : finalAlphaCumprod
        let betaT = 1 - alphaT
        let sqrtAlpha = alphaT.squareRoot()
        let sqrtBeta = betaT.squareRoot()
        let std = eta * variance(timestep: t, previousTimestep: previousT).squareRoot()
        let directionScale = (1 - alphaPrev - std * std).squareRoot()
        let sqrtAlphaPrev = alphaPrev.squareRoot()
        let prediction = settings.predictionType
        let clipRange: Float? = settings.clipSample ? settings.clipSampleRange : nil
        if eta > 0 { noise.fillNormal(noiseBuffer.buffer) }
        let withNoise = eta > 0
        LaneMaps.map(x, x, out, noiseBuffer.pointer, count: elementCount) { s, m, n in
            var x0 = AlphaStyle.originalSample(prediction, sqrtAlpha: sqrtAlpha, sqrtBeta: sqrtBeta, sample: s, output: m)
            let epsilon: FloatLanes
            switch prediction {
            case .epsilon: epsilon = m
            case .vPrediction: epsilon = sqrtAlpha * m + sqrtBeta * s
            case .sample: epsilon = (s - sqrtAlpha * x0) / sqrtBeta
            }
            if let clipRange { x0 = LaneMaps.clamp(x0, clipRange) }
            let previous = sqrtAlphaPrev * x0 + directionScale * epsilon
            return withNoise ? previous + std * n : previous
        }
        stepIndex += 1
    }
}

/// diffusers `DDPMScheduler` (Ho et al. 2020, eq. 7) with `variance_type = fixed_small`:
/// the posterior mean plus sqrt(variance) times noise drawn from the generator on every
/// step whose timestep is above 0.
///
/// Reads beta schedule, prediction type (epsilon, v_prediction, sample), clip_sample and
/// clip_sample_range, timestep spacing, steps_offset and rescale_betas_zero_snr. Leaves out:
/// other variance types, thresholding, custom timesteps.
final class DDPMSampler: DiffusionSampler {
    let kind = SamplerKind.ddpm
    let elementCount: Int
    let timesteps: [Float]
    let sigmas: [Float] = []
    let initNoiseSigma: Float = 1
    let modelInputDivisor: Float = 1
    private(set) var stepIndex = 0
    private let settings: SamplerSettings
    private let alphasCumprod: [Float]
    private let noiseBuffer: LatentBuffer

    init(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int, count: Int) throws {
        elementCount = count
        self.settings = settings
        alphasCumprod = training.alphasCumprod
        timesteps = try AlphaStyle.integerTimesteps(settings, steps: steps).map { Float($0) }
        noiseBuffer = LatentBuffer(count: count)
    }

    /// `_get_variance(t)` for `fixed_small`, clamped at 1e-20.
    func variance(stepIndex index: Int) -> Float {
        let t = Int(timesteps[index])
        let alphaT = alphasCumprod[t]
        let alphaPrev = index + 1 < timesteps.count ? alphasCumprod[Int(timesteps[index + 1])] : 1
        let currentBeta = 1 - alphaT / alphaPrev
        return max((1 - alphaPrev) / (1 - alphaT) * currentBeta, 1e-20)
    }

    func step(modelOutput: UnsafeBufferPointer<Float>, sample: UnsafeMutableBufferPointer<Float>,
              noise: NoiseGenerator) throws {
        guard let out = modelOutput.baseAddress, let x = sample.baseAddress, stepIndex < timesteps.count else { return }
        let t = Int(timesteps[stepIndex])
        let alphaT = alphasCumprod[t]
        let alphaPrev: Float = stepIndex + 1 < timesteps.count ? alphasCumprod[Int(timesteps[stepIndex + 1])] : 1
        let betaT = 1 - alphaT
        let betaPrev = 1 - alphaPrev
        let currentAlpha = alphaT / alphaPrev
        let currentBeta = 1 - currentAlpha
        let sqrtAlpha = alphaT.squareRoot()
        let sqrtBeta = betaT.squareRoot()
        let originalCoefficient = alphaPrev.squareRoot() * currentBeta / betaT
        let sampleCoefficient = currentAlpha.squareRoot() * betaPrev / betaT
        let prediction = settings.predictionType
        let clipRange: Float? = settings.clipSample ? settings.clipSampleRange : nil
        let withNoise = t > 0
        let std = withNoise ? variance(stepIndex: stepIndex).squareRoot() : 0
        if withNoise { noise.fillNormal(noiseBuffer.buffer) }
        LaneMaps.map(x, x, out, noiseBuffer.pointer, count: elementCount) { s, m, n in
            var x0 = AlphaStyle.originalSample(prediction, sqrtAlpha: sqrtAlpha, sqrtBeta: sqrtBeta, sample: s, output: m)
            if let clipRange { x0 = LaneMaps.clamp(x0, clipRange) }
            let mean = originalCoefficient * x0 + sampleCoefficient * s
            return withNoise ? mean + std * n : mean
        }
        stepIndex += 1
    }
}
