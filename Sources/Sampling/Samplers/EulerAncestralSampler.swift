import Kernels

extension SamplerKind {
    /// `EulerAncestralDiscreteScheduler`.
    public static let eulerAncestral = SamplerKind(SamplerDefinition(
        name: "euler_a", automatic1111Name: "Euler a", diffusersClass: "EulerAncestralDiscreteScheduler",
        defaults: SchedulerDefaults(betaStart: 0.0001, betaEnd: 0.02, betaSchedule: .linear, timestepSpacing: .linspace),
        reads: [], zeroTerminalSNR: .terminalNudged,
        configure: { settings, _ in
            // diffusers accepts it in set_timesteps and raises NotImplementedError in step().
            if settings.predictionType == .sample { throw settings.unsupported("prediction_type", "sample") }
        },
        build: { try EulerAncestralSampler($0, $1, steps: $2, count: $3) }))
}

/// diffusers `EulerAncestralDiscreteScheduler`: an Euler step down to `sigma_down`, then
/// fresh noise times `sigma_up` (k-diffusion's `sample_euler_ancestral`, eta = 1).
/// Noise is drawn from the generator on every step, the last one included, as diffusers does.
///
/// Reads beta schedule, prediction type (epsilon, v_prediction), timestep spacing and
/// steps_offset, rescale_betas_zero_snr. The class has no Karras sigmas.
final class EulerAncestralSampler: SamplerBase, DiffusionSampler {
    private let prediction: PredictionType
    private let noiseBuffer: LatentBuffer

    init(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int, count: Int) throws {
        prediction = settings.predictionType
        let spaced = SigmaSpacingMath.floatTimesteps(settings, steps: steps)
        let sigmas = spaced.map { Float(NumpyArith.interpolate($0, training.sigmas)) } + [0]
        noiseBuffer = LatentBuffer(count: count)
        super.init(kind: .eulerAncestral, elementCount: count, timesteps: spaced.map { Float($0) }, sigmas: sigmas,
                   initNoiseSigma: KarrasStyle.initNoiseSigma(sigmas, spacing: settings.timestepSpacing))
    }

    var modelInputDivisor: Float { KarrasStyle.inputDivisor(sigmas[min(stepIndex, sigmas.count - 1)]) }

    func step(modelOutput: UnsafeBufferPointer<Float>, sample: UnsafeMutableBufferPointer<Float>,
              noise: NoiseGenerator) throws {
        guard let out = modelOutput.baseAddress, let x = sample.baseAddress, stepIndex < timesteps.count else { return }
        let sigmaFrom = sigmas[stepIndex]
        let sigmaTo = sigmas[stepIndex + 1]
        let sigmaUp = (sigmaTo * sigmaTo * (sigmaFrom * sigmaFrom - sigmaTo * sigmaTo) / (sigmaFrom * sigmaFrom)).squareRoot()
        let sigmaDown = (sigmaTo * sigmaTo - sigmaUp * sigmaUp).squareRoot()
        let dt = sigmaDown - sigmaFrom
        noise.fillNormal(noiseBuffer.buffer)
        let prediction = self.prediction
        LaneMaps.map(x, x, out, noiseBuffer.pointer, count: elementCount) { s, m, n in
            let denoised = KarrasStyle.denoised(prediction, sigma: sigmaFrom, sample: s, output: m)
            let derivative = (s - denoised) / sigmaFrom
            return (s + derivative * dt) + n * sigmaUp
        }
        advance()
    }
}
