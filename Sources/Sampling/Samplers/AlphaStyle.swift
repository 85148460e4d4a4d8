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

/// State the alpha-parameterised samplers (DDIM, DDPM, LCM) share: their resolved config,
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
}
