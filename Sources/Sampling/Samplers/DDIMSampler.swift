import Kernels

extension SamplerKind {
    /// `DDIMScheduler`.
    public static let ddim = SamplerKind(SamplerDefinition(
        name: "ddim", automatic1111Name: "DDIM", diffusersClass: "DDIMScheduler",
        defaults: SchedulerDefaults(betaStart: 0.0001, betaEnd: 0.02, betaSchedule: .linear, timestepSpacing: .leading,
                                    clipSample: true),
        reads: [.clipSample, .thresholding], zeroTerminalSNR: .exactZero,
        // Above 1 the direction term's square root goes negative (NaN in diffusers).
        etaRange: 0...1,
        build: { try DDIMSampler($0, $1, steps: $2, count: $3) }))
}

/// diffusers `DDIMScheduler` (Song et al. 2021, eq. 12) with `eta` (0 in
/// StableDiffusionPipeline, so deterministic; eta > 0 draws noise from the generator).
///
/// Reads beta schedule, prediction type (epsilon, v_prediction, sample), clip_sample and
/// clip_sample_range, set_alpha_to_one, timestep spacing, steps_offset and
/// rescale_betas_zero_snr. Leaves out: thresholding, use_clipped_model_output.
final class DDIMSampler: AlphaSamplerBase, DiffusionSampler {
    /// DDIM's eta (0 = deterministic, as StableDiffusionPipeline's default); a job's `eta`.
    var eta: Float = 0
    private let finalAlphaCumprod: Float
    private let stepSize: Int

    init(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int, count: Int) throws {
        finalAlphaCumprod = settings.setAlphaToOne ? 1 : training.alphasCumprod[0]
        let timesteps = try AlphaStyle.integerTimesteps(settings, steps: steps).map { Float($0) }
        stepSize = settings.numTrainTimesteps / steps
        super.init(kind: .ddim, settings, training, count: count, timesteps: timesteps)
        eta = Float(settings.options.eta ?? 0)
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
            let epsilon = AlphaStyle.predictedNoise(prediction, sqrtAlpha: sqrtAlpha, sqrtBeta: sqrtBeta,
                                                    sample: s, output: m, originalSample: x0)
            if let clipRange { x0 = LaneMaps.clamp(x0, clipRange) }
            let previous = sqrtAlphaPrev * x0 + directionScale * epsilon
            return withNoise ? previous + std * n : previous
        }
        advance()
    }
}
