import Foundation

/// The fields of a diffusers `scheduler/scheduler_config.json` that the samplers read.
///
/// Every field is optional: a missing field means "the default of the scheduler class
/// that the sampler maps to", exactly like `SchedulerClass.from_config(config)` in
/// diffusers. Keys the samplers do not use (`_class_name`, `skip_prk_steps`, …) are ignored,
/// as `from_config` ignores them.
public struct SchedulerConfig: Sendable, Equatable, Decodable {
    public var numTrainTimesteps: Int?
    public var betaStart: Double?
    public var betaEnd: Double?
    public var betaSchedule: String?
    public var trainedBetas: [Double]?
    public var predictionType: String?
    public var timestepSpacing: String?
    public var stepsOffset: Int?
    public var setAlphaToOne: Bool?
    public var clipSample: Bool?
    public var clipSampleRange: Double?
    public var thresholding: Bool?
    public var rescaleBetasZeroSnr: Bool?
    public var interpolationType: String?
    public var timestepType: String?
    public var finalSigmasType: String?
    public var useKarrasSigmas: Bool?
    public var useExponentialSigmas: Bool?
    public var useBetaSigmas: Bool?
    public var sigmaMin: Double?
    public var sigmaMax: Double?
    public var varianceType: String?
    public var lowerOrderFinal: Bool?
    public var eulerAtFinal: Bool?
    public var lambdaMinClipped: Double?
    public var solverType: String?
    public var useLuLambdas: Bool?
    public var originalInferenceSteps: Int?
    public var timestepScaling: Double?

    enum CodingKeys: String, CodingKey {
        case numTrainTimesteps = "num_train_timesteps"
        case betaStart = "beta_start"
        case betaEnd = "beta_end"
        case betaSchedule = "beta_schedule"
        case trainedBetas = "trained_betas"
        case predictionType = "prediction_type"
        case timestepSpacing = "timestep_spacing"
        case stepsOffset = "steps_offset"
        case setAlphaToOne = "set_alpha_to_one"
        case clipSample = "clip_sample"
        case clipSampleRange = "clip_sample_range"
        case thresholding
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr"
        case interpolationType = "interpolation_type"
        case timestepType = "timestep_type"
        case finalSigmasType = "final_sigmas_type"
        case useKarrasSigmas = "use_karras_sigmas"
        case useExponentialSigmas = "use_exponential_sigmas"
        case useBetaSigmas = "use_beta_sigmas"
        case sigmaMin = "sigma_min"
        case sigmaMax = "sigma_max"
        case varianceType = "variance_type"
        case lowerOrderFinal = "lower_order_final"
        case eulerAtFinal = "euler_at_final"
        case lambdaMinClipped = "lambda_min_clipped"
        case solverType = "solver_type"
        case useLuLambdas = "use_lu_lambdas"
        case originalInferenceSteps = "original_inference_steps"
        case timestepScaling = "timestep_scaling"
    }

    public init() {}

    /// Reads `scheduler_config.json` (or any JSON object with these keys).
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw SamplingError.unreadableConfig(path: url.path, reason: "\(error.localizedDescription)")
        }
        try self.init(json: data, path: url.path)
    }

    /// Parses JSON text; `path` only names the source in errors.
    public init(json data: Data, path: String = "scheduler_config.json") throws {
        do {
            self = try JSONDecoder().decode(SchedulerConfig.self, from: data)
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw SamplingError.invalidConfig(path: path, field: field, reason: context.debugDescription)
        } catch {
            throw SamplingError.unreadableConfig(path: path, reason: "not a JSON object: \(error)")
        }
    }
}

/// Errors from reading a scheduler config or building a sampler from it.
public enum SamplingError: Error, Equatable, CustomStringConvertible {
    /// The config file could not be read or parsed as JSON.
    case unreadableConfig(path: String, reason: String)
    /// A field has the wrong type or an unknown value.
    case invalidConfig(path: String, field: String, reason: String)
    /// The config asks for a diffusers feature this port leaves out.
    case unsupported(sampler: String, field: String, value: String)
    /// The step count does not fit the schedule.
    case invalidSteps(sampler: String, steps: Int, reason: String)
    /// The job asked for a sigma schedule its sampler's diffusers class does not have.
    case scheduleUnavailable(sampler: String, schedule: String)
    /// A job's sampler option (`eta`, `restart`: `SamplerOptions`) that the sampler lacks or
    /// that does not fit its schedule.
    case invalidOption(sampler: String, option: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadableConfig(path, reason):
            return "\(path): cannot read scheduler config: \(reason)"
        case let .invalidConfig(path, field, reason):
            return "\(path): field \(field): \(reason)"
        case let .unsupported(sampler, field, value):
            return "sampler \(sampler): scheduler config \(field) = \(value) is not supported by diffusiond; remove it from scheduler_config.json or pick another sampler"
        case let .invalidSteps(sampler, steps, reason):
            return "sampler \(sampler): \(steps) steps: \(reason)"
        case let .scheduleUnavailable(sampler, schedule):
            let offering = SamplerKind.allCases.filter { $0.supports(.karras) }.map(\.rawValue).joined(separator: ", ")
            return "sampler \(sampler) has no \(schedule) schedule (its diffusers class reads no use_\(schedule)_sigmas); "
                + "use schedule: default, or one of the samplers that have it: \(offering)"
        case let .invalidOption(sampler, option, reason):
            return "sampler \(sampler): \(option): \(reason)"
        }
    }
}
