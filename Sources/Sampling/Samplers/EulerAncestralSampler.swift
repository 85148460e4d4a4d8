import Kernels

extension SamplerKind {
    /// `EulerAncestralDiscreteScheduler`.
    public static let eulerAncestral = SamplerKind(SamplerDefinition(
        name: "euler_a", automatic1111Name: "Euler a", diffusersClass: "EulerAncestralDiscreteScheduler",
        defaults: SchedulerDefaults(betaStart: 0.0001, betaEnd: 0.02, betaSchedule: .linear, timestepSpacing: .linspace),
        reads: [], zeroTerminalSNR: .terminalNudged,
        // k-diffusion's eta; ComfyUI's SamplerEulerAncestral bounds it at 100.
        etaRange: 0...100, restarts: true,
        configure: { settings, _ in
            // diffusers accepts it in set_timesteps and raises NotImplementedError in step().
            if settings.predictionType == .sample { throw settings.unsupported("prediction_type", "sample") }
        },
        build: { try EulerAncestralSampler($0, $1, steps: $2, count: $3) }))
}

/// diffusers `EulerAncestralDiscreteScheduler`: an Euler step down to `sigma_down`, then
/// fresh noise times `sigma_up` (k-diffusion's `sample_euler_ancestral`). Noise is drawn
/// from the generator on every step, the last one included, as diffusers does.
///
/// A job's `eta` (`SamplerOptions`) scales `sigma_up` as k-diffusion's `get_ancestral_step`
/// does, `min(sigma_to, eta · sigma_up)` (eta 1, the default, is diffusers' class exactly);
/// a `restart` segment (`RestartSegment`) inserts its evaluations after the main step that
/// lands on the sigma nearest its `sigma_min`: after that step's own noise, a second draw
/// times `(sigma_max² − sigma²)^½` lifts the sample to `sigma_max`, and the segment's
/// Karras ramp (model timesteps by diffusers' `_sigma_to_t`) brings it back, `times` times.
/// `tools/fixtures/ancestral_restart.py` is the diffusers scheduler that does the same.
///
/// Reads beta schedule, prediction type (epsilon, v_prediction), timestep spacing and
/// steps_offset, rescale_betas_zero_snr. The class has no Karras sigmas.
final class EulerAncestralSampler: SamplerBase, DiffusionSampler {
    private let prediction: PredictionType
    private let noiseBuffer: LatentBuffer
    /// k-diffusion's eta; 1 leaves diffusers' step untouched.
    private let eta: Float
    /// Where each evaluation's step goes (`sigmas[i + 1]` without restarts).
    private let targets: [Float]
    /// The sigma a restart lifts the sample to after evaluation i, if any.
    private let lifts: [Float?]

    init(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int, count: Int) throws {
        prediction = settings.predictionType
        eta = Float(settings.options.eta ?? 1)
        let spaced = SigmaSpacingMath.floatTimesteps(settings, steps: steps)
        let main = spaced.map { Float(NumpyArith.interpolate($0, training.sigmas)) } + [0]
        var timesteps = spaced.map { Float($0) }
        var sigmas = main
        var targets = Array(main.dropFirst())
        var lifts = [Float?](repeating: nil, count: timesteps.count)
        if let restart = settings.options.restart {
            let plan = try RestartPlan(restart, main: main, logSigmas: SigmaSpacingMath.logSigmas(training.sigmas))
            timesteps = plan.splice(timesteps, main: plan.timesteps)
            sigmas = plan.splice(Array(main.dropLast()), main: plan.sigmas) + [0]
            targets = plan.splice(targets, main: plan.targets)
            lifts = plan.spliceLifts(lifts)
        }
        self.targets = targets
        self.lifts = lifts
        noiseBuffer = LatentBuffer(count: count)
        super.init(kind: .eulerAncestral, elementCount: count, timesteps: timesteps, sigmas: sigmas,
                   initNoiseSigma: KarrasStyle.initNoiseSigma(main, spacing: settings.timestepSpacing))
    }

    var modelInputDivisor: Float { KarrasStyle.inputDivisor(sigmas[min(stepIndex, sigmas.count - 1)]) }

    func step(modelOutput: UnsafeBufferPointer<Float>, sample: UnsafeMutableBufferPointer<Float>,
              noise: NoiseGenerator) throws {
        guard let out = modelOutput.baseAddress, let x = sample.baseAddress, stepIndex < timesteps.count else { return }
        let sigmaFrom = sigmas[stepIndex]
        let sigmaTo = targets[stepIndex]
        var sigmaUp = (sigmaTo * sigmaTo * (sigmaFrom * sigmaFrom - sigmaTo * sigmaTo) / (sigmaFrom * sigmaFrom)).squareRoot()
        if eta != 1 { sigmaUp = min(sigmaTo, eta * sigmaUp) }
        let sigmaDown = (sigmaTo * sigmaTo - sigmaUp * sigmaUp).squareRoot()
        let dt = sigmaDown - sigmaFrom
        noise.fillNormal(noiseBuffer.buffer)
        let prediction = self.prediction
        LaneMaps.map(x, x, out, noiseBuffer.pointer, count: elementCount) { s, m, n in
            let denoised = KarrasStyle.denoised(prediction, sigma: sigmaFrom, sample: s, output: m)
            let derivative = (s - denoised) / sigmaFrom
            return (s + derivative * dt) + n * sigmaUp
        }
        if let lift = lifts[stepIndex] {
            // Restart: forward-noise from sigmaTo up to the segment's sigma_max (Xu et al. 2023, Alg. 1).
            let scale = (lift * lift - sigmaTo * sigmaTo).squareRoot()
            noise.fillNormal(noiseBuffer.buffer)
            LaneMaps.map(x, x, noiseBuffer.pointer, count: elementCount) { s, n in s + n * scale }
        }
        advance()
    }
}

/// The evaluations a `RestartSegment` adds to a main schedule of sigmas (`main`, ending in
/// 0): `times` copies of the segment's Karras ramp, spliced in after main step `after`.
struct RestartPlan {
    /// The main step after which the restarts run (its target is the snapped sigma_min).
    let after: Int
    /// Per added evaluation: model timestep, sigma, step target, and the lift after it.
    let timesteps: [Float]
    let sigmas: [Float]
    let targets: [Float]
    let lifts: [Float?]

    init(_ segment: RestartSegment, main: [Float], logSigmas: [Double]) throws {
        guard segment.steps >= 1, segment.times >= 1 else {
            throw SamplingError.invalidOption(sampler: "euler_a", option: "restart", reason: "steps and times must be at least 1")
        }
        // The positive sigmas a step lands on: main[1 ..< last] (not the start, not the final 0).
        let landing = Array(1..<(main.count - 1))
        guard let nearest = landing.min(by: { abs(Double(main[$0]) - segment.sigmaMin) < abs(Double(main[$1]) - segment.sigmaMin) })
        else {
            throw SamplingError.invalidOption(sampler: "euler_a", option: "restart",
                                              reason: "needs at least 2 steps (a sigma between the first and the last)")
        }
        let low = main[nearest]
        guard segment.sigmaMax > Double(low) else {
            throw SamplingError.invalidOption(sampler: "euler_a", option: "restart",
                                              reason: "sigma_max \(segment.sigmaMax) must be above the schedule's sigma nearest "
                                                  + "sigma_min \(segment.sigmaMin), which is \(low)")
        }
        after = nearest - 1
        // steps + 1 points from sigma_max down to the snapped sigma_min, which is kept exact.
        var ramp = SigmaSpacingMath.karras(sigmaMin: Double(low), sigmaMax: segment.sigmaMax, steps: segment.steps + 1).map { Float($0) }
        ramp[ramp.count - 1] = low
        let rampSigmas = Array(ramp.dropLast())
        let rampTimesteps = rampSigmas.map { Float(SigmaSpacingMath.sigmaToT(Double($0), logSigmas: logSigmas)) }
        var lifts: [Float?] = Array(repeating: nil, count: segment.steps)
        lifts[segment.steps - 1] = ramp[0]
        // The main step `after` lifts into the first restart; each restart but the last lifts again.
        var allLifts: [Float?] = []
        for time in 0..<segment.times {
            allLifts += time == segment.times - 1 ? Array(repeating: nil, count: segment.steps) : lifts
        }
        timesteps = Array(Array(repeating: rampTimesteps, count: segment.times).joined())
        sigmas = Array(Array(repeating: rampSigmas, count: segment.times).joined())
        targets = Array(Array(repeating: Array(ramp.dropFirst()), count: segment.times).joined())
        self.lifts = allLifts
        liftAfterMain = ramp[0]
    }

    /// The lift that main step `after` makes into the first restart.
    let liftAfterMain: Float

    /// `mainList` with the added evaluations' `added` spliced in after main step `after`.
    func splice<T>(_ mainList: [T], main added: [T]) -> [T] {
        Array(mainList[...after]) + added + Array(mainList[(after + 1)...])
    }

    /// The main schedule's lifts (all nil) with the restarts': main step `after` now lifts
    /// into the first restart.
    func spliceLifts(_ mainList: [Float?]) -> [Float?] {
        var head = Array(mainList[...after])
        head[after] = liftAfterMain
        return head + lifts + Array(mainList[(after + 1)...])
    }
}
