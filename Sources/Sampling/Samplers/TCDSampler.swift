import Kernels

extension SamplerKind {
    /// `TCDScheduler`.
    public static let tcd = SamplerKind(SamplerDefinition(
        name: "tcd", automatic1111Name: "TCD", diffusersClass: "TCDScheduler",
        defaults: SchedulerDefaults(betaStart: 0.00085, betaEnd: 0.012, betaSchedule: .scaledLinear, timestepSpacing: .leading),
        // clip_sample and thresholding are in TCDScheduler's config, but its step never
        // applies them: not read here, so thresholding: true is accepted (it changes nothing).
        reads: [], zeroTerminalSNR: .exactZero,
        build: { try TCDSampler($0, $1, steps: $2, count: $3) }))
}

/// diffusers `TCDScheduler` (Zheng et al. 2024, "Trajectory Consistency Distillation",
/// Strategic Stochastic Sampling): on the LCM timestep schedule, each step predicts x0 and
/// epsilon at t, moves them to the smaller timestep s = floor((1 - gamma) * t_prev)
/// (`pred_noised_sample`), then re-noises from s to the next timestep t_prev with noise drawn
/// from the generator, on every step but the last (which returns `pred_noised_sample` at
/// s = 0, not x0).
///
/// gamma is the `eta` argument of `TCDScheduler.step` ("referred to as gamma in the paper";
/// 0 = deterministic, 1 = fully stochastic). This port uses 0.3, step's own default and the
/// value of TCD's authors and diffusers' TCD examples (`pipe(..., eta=0.3)`). Note that
/// StableDiffusionPipeline passes its own `eta` argument, default 0.0, to every scheduler
/// whose step takes one, so a plain `pipe(...)` call runs TCD deterministically: references
/// for this sampler must call the pipeline with `eta=0.3`. Jobs cannot change gamma.
///
/// Reads beta schedule, prediction type (epsilon, v_prediction, sample),
/// original_inference_steps and rescale_betas_zero_snr. TCDScheduler's config also has
/// clip_sample, thresholding, set_alpha_to_one, timestep_spacing, steps_offset and
/// timestep_scaling; its set_timesteps and step never use them (the previous timestep is
/// never negative, so set_alpha_to_one's final alpha is never read). img2img starts part-way
/// through the full schedule (`set_begin_index`), as StableDiffusionImg2ImgPipeline does; the
/// `strength` argument of `set_timesteps` (which that pipeline never passes) is left out, as
/// are custom timesteps and a per-call original_inference_steps.
final class TCDSampler: AlphaSamplerBase, DiffusionSampler {
    /// `step(..., eta=gamma)`, within 0…1; a Python float, so kept as a Double.
    var gamma: Double = 0.3

    init(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int, count: Int) throws {
        let timesteps = try AlphaStyle.distillationTimesteps(settings, steps: steps)
        super.init(kind: .tcd, settings, training, count: count, timesteps: timesteps.map { Float($0) })
    }

    /// `timestep_s = floor((1 - eta) * prev_timestep)`: the Python float `1 - eta` times a
    /// long tensor is a float32 product.
    static func smallerTimestep(previous: Int, gamma: Double) -> Int {
        Int((Float(1 - gamma) * Float(previous)).rounded(.down))
    }

    func step(modelOutput: UnsafeBufferPointer<Float>, sample: UnsafeMutableBufferPointer<Float>,
              noise: NoiseGenerator) throws {
        guard let out = modelOutput.baseAddress, let x = sample.baseAddress, stepIndex < timesteps.count else { return }
        precondition(gamma >= 0 && gamma <= 1, "TCD gamma must be within 0…1")
        let t = Int(timesteps[stepIndex])
        let isLast = stepIndex == timesteps.count - 1
        let previousT = isLast ? 0 : Int(timesteps[stepIndex + 1])
        let alphaT = alphasCumprod[t]
        let alphaPrev = alphasCumprod[previousT]
        let alphaS = alphasCumprod[Self.smallerTimestep(previous: previousT, gamma: gamma)]
        let sqrtAlpha = alphaT.squareRoot()
        let sqrtBeta = (1 - alphaT).squareRoot()
        let sqrtAlphaS = alphaS.squareRoot()
        let sqrtBetaS = (1 - alphaS).squareRoot()
        // Forward diffusion from s to t_prev: sqrt(a_prev / a_s) and sqrt(1 - a_prev / a_s).
        let ratio = alphaPrev / alphaS
        let keep = ratio.squareRoot()
        let fresh = (1 - ratio).squareRoot()
        let prediction = settings.predictionType
        let renoise = gamma > 0 && !isLast
        if renoise { noise.fillNormal(noiseBuffer.buffer) }
        LaneMaps.map(x, x, out, noiseBuffer.pointer, count: elementCount) { s, m, n in
            let x0 = AlphaStyle.originalSample(prediction, sqrtAlpha: sqrtAlpha, sqrtBeta: sqrtBeta, sample: s, output: m)
            let epsilon = AlphaStyle.predictedNoise(prediction, sqrtAlpha: sqrtAlpha, sqrtBeta: sqrtBeta,
                                                    sample: s, output: m, originalSample: x0)
            let noised = sqrtAlphaS * x0 + sqrtBetaS * epsilon
            return renoise ? keep * noised + fresh * n : noised
        }
        advance()
    }
}
