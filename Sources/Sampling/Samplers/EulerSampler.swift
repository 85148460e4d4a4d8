import Foundation
import Kernels

extension SamplerKind {
    /// `EulerDiscreteScheduler`.
    public static let euler = SamplerKind(SamplerDefinition(
        name: "euler", automatic1111Name: "Euler", diffusersClass: "EulerDiscreteScheduler",
        defaults: SchedulerDefaults(betaStart: 0.0001, betaEnd: 0.02, betaSchedule: .linear, timestepSpacing: .linspace),
        reads: [.sigmaSpacing, .finalSigmasType], zeroTerminalSNR: .terminalNudged,
        predictionTypeAliases: ["original_sample": .sample],
        configure: { settings, config in
            // timestep_type "continuous" changes the timesteps only with v_prediction.
            settings.continuousTimesteps = config.timestepType == "continuous" && settings.predictionType == .vPrediction
            if let type = config.interpolationType, type != "linear" {
                throw settings.unsupported("interpolation_type", type)
            }
        },
        build: { try EulerSampler($0, $1, steps: $2, count: $3) }))
}

/// diffusers `EulerDiscreteScheduler` (Karras et al. 2022, Algorithm 2 with s_churn = 0):
/// `prev = sample + (sample - denoised) / sigma * (sigma_next - sigma)`.
///
/// Reads beta schedule, prediction type (epsilon, v_prediction, sample), timestep spacing
/// and steps_offset, Karras / exponential sigmas with sigma_min / sigma_max,
/// final_sigmas_type, timestep_type continuous and rescale_betas_zero_snr (via
/// TrainingSchedule). Leaves out: s_churn / s_tmin / s_tmax (StableDiffusionPipeline never
/// passes them), use_beta_sigmas, interpolation_type log_linear, custom timesteps or sigmas.
final class EulerSampler: SamplerBase, DiffusionSampler {
    private let prediction: PredictionType

    init(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int, count: Int) throws {
        prediction = settings.predictionType
        let (schedule, spacedTimesteps) = KarrasStyle.sigmasAndTimesteps(settings, training, steps: steps)
        var sigmas = schedule.map { Float($0) }
        if settings.finalSigmaIsSigmaMin {
            let first = training.alphasCumprod[0]
            sigmas.append(((1 - first) / first).squareRoot())
        } else {
            sigmas.append(0)
        }
        let timesteps: [Float]
        if settings.continuousTimesteps {
            // timestep_type "continuous" with v_prediction: t = 0.25 * log(sigma)
            timesteps = sigmas.dropLast().map { 0.25 * Foundation.log($0) }
        } else {
            timesteps = spacedTimesteps.map { Float($0) }
        }
        super.init(kind: .euler, elementCount: count, timesteps: timesteps, sigmas: sigmas,
                   initNoiseSigma: KarrasStyle.initNoiseSigma(sigmas, spacing: settings.timestepSpacing))
    }

    var modelInputDivisor: Float { KarrasStyle.inputDivisor(sigmas[min(stepIndex, sigmas.count - 1)]) }

    func step(modelOutput: UnsafeBufferPointer<Float>, sample: UnsafeMutableBufferPointer<Float>,
              noise: NoiseGenerator) throws {
        guard let out = modelOutput.baseAddress, let x = sample.baseAddress, stepIndex < timesteps.count else { return }
        let sigma = sigmas[stepIndex]
        let dt = sigmas[stepIndex + 1] - sigma
        let prediction = self.prediction
        LaneMaps.map(x, x, out, count: elementCount) { s, m in
            let denoised = KarrasStyle.denoised(prediction, sigma: sigma, sample: s, output: m)
            let derivative = (s - denoised) / sigma
            return s + derivative * dt
        }
        advance()
    }
}
