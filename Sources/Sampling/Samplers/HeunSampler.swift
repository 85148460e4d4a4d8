import Kernels

extension SamplerKind {
    /// `HeunDiscreteScheduler`.
    public static let heun = SamplerKind(SamplerDefinition(
        name: "heun", automatic1111Name: "Heun", diffusersClass: "HeunDiscreteScheduler",
        defaults: SchedulerDefaults(betaStart: 0.00085, betaEnd: 0.012, betaSchedule: .linear, timestepSpacing: .linspace,
                                    clipSample: false),
        reads: [.sigmaSpacing, .clipSample], zeroTerminalSNR: .notRead,
        build: { try HeunSampler($0, $1, steps: $2, count: $3) }))
}

/// diffusers `HeunDiscreteScheduler` (Karras et al. 2022, Algorithm 1 without churn):
/// every step but the last is an Euler predictor plus a trapezoidal corrector, so the
/// timesteps are `t0, t1, t1, t2, t2, …` and the model runs `2 * steps - 1` times.
///
/// Reads beta schedule, prediction type (epsilon, v_prediction, sample), clip_sample and
/// clip_sample_range, timestep spacing and steps_offset, Karras / exponential sigmas.
/// Leaves out: beta_schedule `exp`, use_beta_sigmas, custom timesteps.
final class HeunSampler: SamplerBase, DiffusionSampler {
    private let prediction: PredictionType
    private let clipRange: Float?
    /// Predictor state: the first-order derivative and the sample it started from.
    private let previousDerivative: LatentBuffer
    private let previousSample: LatentBuffer
    private var pendingDt: Float?

    init(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int, count: Int) throws {
        prediction = settings.predictionType
        clipRange = settings.clipSample ? settings.clipSampleRange : nil
        let (schedule, spaced) = KarrasStyle.sigmasAndTimesteps(settings, training, steps: steps)
        let base = schedule.map { Float($0) } + [0]
        // sigmas: [s0, s1, s1, …, s(n-1), s(n-1), 0]; timesteps: [t0, t1, t1, …]
        var doubled = [base[0]]
        for sigma in base[1..<(base.count - 1)] { doubled += [sigma, sigma] }
        doubled.append(base[base.count - 1])
        let times = spaced.map { Float($0) }
        var doubledTimes = [times[0]]
        for t in times.dropFirst() { doubledTimes += [t, t] }
        previousDerivative = LatentBuffer(count: count)
        previousSample = LatentBuffer(count: count)
        super.init(kind: .heun, elementCount: count, timesteps: doubledTimes, sigmas: doubled,
                   initNoiseSigma: KarrasStyle.initNoiseSigma(doubled, spacing: settings.timestepSpacing))
    }

    /// `HeunDiscreteScheduler.order`: two evaluations per step.
    override var order: Int { 2 }

    var modelInputDivisor: Float { KarrasStyle.inputDivisor(sigmas[min(stepIndex, sigmas.count - 1)]) }

    func step(modelOutput: UnsafeBufferPointer<Float>, sample: UnsafeMutableBufferPointer<Float>,
              noise: NoiseGenerator) throws {
        guard let out = modelOutput.baseAddress, let x = sample.baseAddress, stepIndex < timesteps.count else { return }
        let prediction = self.prediction
        let clipRange = self.clipRange
        let derivativeStore = previousDerivative.pointer
        let sampleStore = previousSample.pointer
        if let dt = pendingDt {
            // Corrector: average the derivative at sigma_next with the predictor's.
            let sigmaNext = sigmas[stepIndex]
            LaneMaps.map(x, x, out, derivativeStore, sampleStore, count: elementCount) { s, m, previous, start in
                var denoised = KarrasStyle.denoised(prediction, sigma: sigmaNext, sample: s, output: m)
                if let clipRange { denoised = LaneMaps.clamp(denoised, clipRange) }
                let derivative = ((s - denoised) / sigmaNext + previous) / 2
                return start + derivative * dt
            }
            pendingDt = nil
        } else {
            // Predictor: Euler step from sigma to sigma_next, remembered for the corrector.
            let sigma = sigmas[stepIndex]
            let dt = sigmas[stepIndex + 1] - sigma
            for i in 0..<elementCount { sampleStore[i] = x[i] }
            LaneMaps.map(derivativeStore, x, out, count: elementCount) { s, m in
                var denoised = KarrasStyle.denoised(prediction, sigma: sigma, sample: s, output: m)
                if let clipRange { denoised = LaneMaps.clamp(denoised, clipRange) }
                return (s - denoised) / sigma
            }
            LaneMaps.map(x, x, derivativeStore, count: elementCount) { s, d in s + d * dt }
            pendingDt = dt
        }
        advance()
    }
}
