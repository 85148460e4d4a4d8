import Kernels

extension SamplerKind {
    /// `DDPMScheduler`.
    public static let ddpm = SamplerKind(SamplerDefinition(
        name: "ddpm", automatic1111Name: "DDPM", diffusersClass: "DDPMScheduler",
        defaults: SchedulerDefaults(betaStart: 0.0001, betaEnd: 0.02, betaSchedule: .linear, timestepSpacing: .leading,
                                    clipSample: true),
        reads: [.clipSample, .thresholding], zeroTerminalSNR: .exactZero,
        configure: { settings, config in
            if let variance = config.varianceType, variance != "fixed_small" {
                throw settings.unsupported("variance_type", variance)
            }
        },
        build: { try DDPMSampler($0, $1, steps: $2, count: $3) }))
}

/// diffusers `DDPMScheduler` (Ho et al. 2020, eq. 7) with `variance_type = fixed_small`:
/// the posterior mean plus sqrt(variance) times noise drawn from the generator on every
/// step whose timestep is above 0.
///
/// Reads beta schedule, prediction type (epsilon, v_prediction, sample), clip_sample and
/// clip_sample_range, timestep spacing, steps_offset and rescale_betas_zero_snr. Leaves out:
/// other variance types, thresholding, custom timesteps.
final class DDPMSampler: AlphaSamplerBase, DiffusionSampler {
    init(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int, count: Int) throws {
        let timesteps = try AlphaStyle.integerTimesteps(settings, steps: steps).map { Float($0) }
        super.init(kind: .ddpm, settings, training, count: count, timesteps: timesteps)
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
        advance()
    }
}
