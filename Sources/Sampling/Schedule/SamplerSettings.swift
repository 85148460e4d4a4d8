/// How betas are laid out over the training timesteps (`beta_schedule`).
public enum BetaSchedule: String, Sendable {
    case linear
    case scaledLinear = "scaled_linear"
    /// Glide cosine schedule (`betas_for_alpha_bar`, max_beta 0.999).
    case squaredcosCapV2 = "squaredcos_cap_v2"
}

/// What the model predicts (`prediction_type`).
public enum PredictionType: String, Sendable {
    case epsilon
    case vPrediction = "v_prediction"
    /// The denoised sample itself (`sample`; diffusers also accepts `original_sample` for Euler).
    case sample
}

/// How inference timesteps are picked from the training timesteps (`timestep_spacing`).
public enum TimestepSpacing: String, Sendable {
    case leading
    case linspace
    case trailing
}

/// Sigma spacing of the sigma-based samplers.
public enum SigmaSpacing: Sendable, Equatable {
    /// Interpolated at the spaced timesteps (diffusers' default, `interpolation_type: linear`).
    case interpolated
    /// `use_karras_sigmas`: Karras et al. 2022 eq. 5, rho = 7.
    case karras
    /// `use_exponential_sigmas`: log-linear between sigma_max and sigma_min.
    case exponential
}

/// A scheduler config resolved for one sampler: every field has the value that
/// `SchedulerClass.from_config(config)` would hold, class defaults filled in.
public struct SamplerSettings: Sendable {
    public var sampler: SamplerKind
    public var numTrainTimesteps: Int
    public var betaStart: Double
    public var betaEnd: Double
    public var betaSchedule: BetaSchedule
    public var trainedBetas: [Double]?
    public var predictionType: PredictionType
    public var timestepSpacing: TimestepSpacing
    public var stepsOffset: Int
    public var sigmaSpacing: SigmaSpacing
    /// `sigma_min` / `sigma_max` overrides of the Karras / exponential ramps.
    public var sigmaMin: Double?
    public var sigmaMax: Double?
    /// `final_sigmas_type: sigma_min` instead of `zero` (the classes that read the key).
    public var finalSigmaIsSigmaMin: Bool
    /// Euler `timestep_type: continuous` with v-prediction: the model gets `0.25 log sigma`.
    public var continuousTimesteps: Bool
    /// DDIM / LCM `set_alpha_to_one`.
    public var setAlphaToOne: Bool
    /// Clamp the predicted original sample to ±clipSampleRange (the classes that read `clip_sample`).
    public var clipSample: Bool
    public var clipSampleRange: Float
    /// DPM-Solver `lower_order_final` / `euler_at_final` / `lambda_min_clipped`.
    public var lowerOrderFinal: Bool
    public var eulerAtFinal: Bool
    public var lambdaMinClipped: Double
    /// LCM `original_inference_steps` / `timestep_scaling`.
    public var originalInferenceSteps: Int
    public var timestepScaling: Double
    /// `rescale_betas_zero_snr`, false for the classes that have no such option and ignore
    /// the key (see `ZeroTerminalSNR`).
    public var rescaleBetasZeroSNR: Bool
    /// The job's `eta` and `restart` (not scheduler config keys); checked by `makeSampler`.
    public var options = SamplerOptions()

    /// Resolves `config` for `sampler`, with `schedule` applied like
    /// `from_config(config, use_karras_sigmas=True)` (or exponential).
    /// Throws for config values diffusers would honour but this port leaves out.
    ///
    /// What differs between classes (defaults, which keys they read, their own checks)
    /// comes from the sampler's `SamplerDefinition`.
    public init(sampler: SamplerKind, config: SchedulerConfig, schedule: ScheduleKind = .default) throws {
        self.sampler = sampler
        let definition = sampler.definition
        let defaults = definition.defaults
        let reads = definition.reads
        let name = sampler.rawValue
        func parse<T: RawRepresentable>(_ value: String?, _ field: String, default fallback: T) throws -> T where T.RawValue == String {
            guard let value else { return fallback }
            guard let parsed = T(rawValue: value) else {
                throw SamplingError.invalidConfig(path: "scheduler_config.json", field: field, reason: "unknown value \"\(value)\"")
            }
            return parsed
        }
        func unsupported(_ field: String, _ value: CustomStringConvertible) -> SamplingError {
            .unsupported(sampler: name, field: field, value: value.description)
        }

        // Class defaults (diffusers 0.42 __init__ signatures).
        numTrainTimesteps = config.numTrainTimesteps ?? 1000
        betaStart = config.betaStart ?? defaults.betaStart
        betaEnd = config.betaEnd ?? defaults.betaEnd
        betaSchedule = try parse(config.betaSchedule, "beta_schedule", default: defaults.betaSchedule)
        trainedBetas = config.trainedBetas
        if let value = config.predictionType, let alias = definition.predictionTypeAliases[value] {
            predictionType = alias
        } else {
            predictionType = try parse(config.predictionType, "prediction_type", default: .epsilon)
        }
        timestepSpacing = try parse(config.timestepSpacing, "timestep_spacing", default: defaults.timestepSpacing)
        stepsOffset = config.stepsOffset ?? 0
        sigmaMin = config.sigmaMin
        sigmaMax = config.sigmaMax
        setAlphaToOne = config.setAlphaToOne ?? true
        clipSampleRange = Float(config.clipSampleRange ?? 1.0)
        lowerOrderFinal = config.lowerOrderFinal ?? true
        eulerAtFinal = config.eulerAtFinal ?? false
        lambdaMinClipped = config.lambdaMinClipped ?? -Double.infinity
        originalInferenceSteps = config.originalInferenceSteps ?? 50
        timestepScaling = config.timestepScaling ?? 10.0

        // Optional keys: read only by the classes that have them (from_config drops the rest).
        clipSample = reads.contains(.clipSample) && (config.clipSample ?? defaults.clipSample)

        var karras = config.useKarrasSigmas ?? false
        var exponential = config.useExponentialSigmas ?? false
        switch schedule {
        case .default: break
        case .karras: karras = true; exponential = false
        case .exponential: exponential = true; karras = false
        }
        if reads.contains(.sigmaSpacing) {
            if karras && exponential { throw unsupported("use_karras_sigmas and use_exponential_sigmas", "both true") }
            sigmaSpacing = karras ? .karras : (exponential ? .exponential : .interpolated)
            if config.useBetaSigmas == true { throw unsupported("use_beta_sigmas", true) }
        } else {
            if schedule != .default {
                throw SamplingError.scheduleUnavailable(sampler: name, schedule: schedule.rawValue)
            }
            sigmaSpacing = .interpolated
        }
        finalSigmaIsSigmaMin = false
        if reads.contains(.finalSigmasType), let type = config.finalSigmasType {
            switch type {
            case "zero": finalSigmaIsSigmaMin = false
            case "sigma_min": finalSigmaIsSigmaMin = true
            default: throw SamplingError.invalidConfig(path: "scheduler_config.json", field: "final_sigmas_type", reason: "unknown value \"\(type)\"")
            }
        }
        continuousTimesteps = false
        if config.thresholding == true && reads.contains(.thresholding) {
            throw unsupported("thresholding", true)
        }
        rescaleBetasZeroSNR = config.rescaleBetasZeroSnr == true && definition.zeroTerminalSNR != .notRead

        // The class's own keys and checks.
        try definition.configure(&self, config)
    }

    /// The error for a config value this port leaves out, naming this sampler.
    func unsupported(_ field: String, _ value: CustomStringConvertible) -> SamplingError {
        .unsupported(sampler: sampler.rawValue, field: field, value: value.description)
    }
}
