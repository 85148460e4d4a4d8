import Kernels

extension SamplerKind {
    /// `LCMScheduler`.
    public static let lcm = SamplerKind(SamplerDefinition(
        name: "lcm", automatic1111Name: "LCM", diffusersClass: "LCMScheduler",
        defaults: SchedulerDefaults(betaStart: 0.00085, betaEnd: 0.012, betaSchedule: .scaledLinear, timestepSpacing: .leading,
                                    clipSample: false),
        reads: [.clipSample, .thresholding], zeroTerminalSNR: .exactZero,
        build: { try LCMSampler($0, $1, steps: $2, count: $3) }))
}

/// diffusers `LCMScheduler` (Luo et al. 2023): consistency-model boundary scalings
/// c_skip / c_out at `timestep * timestep_scaling`, then re-noising to the next timestep
/// with noise drawn from the generator on every step but the last.
///
/// Reads beta schedule, prediction type (epsilon, v_prediction, sample),
/// original_inference_steps, timestep_scaling, clip_sample, clip_sample_range and
/// rescale_betas_zero_snr. Leaves out: thresholding, custom timesteps, strength < 1 (img2img).
final class LCMSampler: AlphaSamplerBase, DiffusionSampler {
    init(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int, count: Int) throws {
        let timesteps = try AlphaStyle.distillationTimesteps(settings, steps: steps)
        super.init(kind: .lcm, settings, training, count: count, timesteps: timesteps.map { Float($0) })
    }

    func step(modelOutput: UnsafeBufferPointer<Float>, sample: UnsafeMutableBufferPointer<Float>,
              noise: NoiseGenerator) throws {
        guard let out = modelOutput.baseAddress, let x = sample.baseAddress, stepIndex < timesteps.count else { return }
        let t = Int(timesteps[stepIndex])
        let previousT = stepIndex + 1 < timesteps.count ? Int(timesteps[stepIndex + 1]) : t
        let alphaT = alphasCumprod[t]
        let alphaPrev = alphasCumprod[previousT]
        let sqrtAlpha = alphaT.squareRoot()
        let sqrtBeta = (1 - alphaT).squareRoot()
        // get_scalings_for_boundary_condition_discrete, sigma_data = 0.5 (float32 tensor math).
        let scaled = Float(t) * Float(settings.timestepScaling)
        let cSkip = 0.25 / (scaled * scaled + 0.25)
        let cOut = scaled / (scaled * scaled + 0.25).squareRoot()
        let prediction = settings.predictionType
        let clipRange: Float? = settings.clipSample ? settings.clipSampleRange : nil
        let isLast = stepIndex == timesteps.count - 1
        if !isLast { noise.fillNormal(noiseBuffer.buffer) }
        let sqrtAlphaPrev = alphaPrev.squareRoot()
        let sqrtBetaPrev = (1 - alphaPrev).squareRoot()
        LaneMaps.map(x, x, out, noiseBuffer.pointer, count: elementCount) { s, m, n in
            var x0 = AlphaStyle.originalSample(prediction, sqrtAlpha: sqrtAlpha, sqrtBeta: sqrtBeta, sample: s, output: m)
            if let clipRange { x0 = LaneMaps.clamp(x0, clipRange) }
            let denoised = cOut * x0 + cSkip * s
            return isLast ? denoised : sqrtAlphaPrev * denoised + sqrtBetaPrev * n
        }
        advance()
    }
}
