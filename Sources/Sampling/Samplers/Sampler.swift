import Kernels

/// One diffusers scheduler, set up for a number of steps on a latent of a fixed size.
///
/// A sampler mirrors its scheduler's `set_timesteps`, `init_noise_sigma`,
/// `scale_model_input` and `step`, and keeps its step index and history (multistep
/// samplers) itself, with every buffer allocated at construction. `sample(...)` drives it
/// through a denoise closure; the known-answer tests drive `step` directly.
public protocol DiffusionSampler: AnyObject {
    /// The diffusers scheduler this sampler reproduces.
    var kind: SamplerKind { get }
    /// Number of floats in the latent this sampler was built for.
    var elementCount: Int { get }
    /// The model's timestep for each evaluation, in order (`scheduler.timesteps`).
    var timesteps: [Float] { get }
    /// The sigmas of the sigma-based schedulers (`scheduler.sigmas`), empty for the others.
    var sigmas: [Float] { get }
    /// `scheduler.init_noise_sigma`: the initial latents are unit noise times this.
    var initNoiseSigma: Float { get }
    /// Index of the next evaluation (diffusers' `step_index`).
    var stepIndex: Int { get }
    /// `scale_model_input`: the model input is the sample divided by this for the current step.
    var modelInputDivisor: Float { get }
    /// `scheduler.step(model_output, timesteps[stepIndex], sample, generator)`: advances
    /// `sample` in place; draws noise from `noise` where diffusers draws it.
    func step(modelOutput: UnsafeBufferPointer<Float>, sample: UnsafeMutableBufferPointer<Float>,
              noise: NoiseGenerator) throws
}

/// Model call inside the sampler loop: fill `modelOutput` with the model's prediction
/// (epsilon, v or sample, per the scheduler config) for `modelInput` at `timestep`.
/// Classifier-free guidance belongs in here.
public typealias DenoiseFunction = (_ modelInput: UnsafeBufferPointer<Float>, _ timestep: Float,
                                    _ modelOutput: UnsafeMutableBufferPointer<Float>) throws -> Void

/// Runs every step of `sampler` on `latents` (already scaled by `initNoiseSigma`), as
/// diffusers' StableDiffusionPipeline does: `scale_model_input`, model, `step`.
/// `afterStep` gets the 1-based number of the finished step and may throw to stop.
/// The two scratch buffers are allocated once, before the loop.
public func sample(_ sampler: DiffusionSampler, latents: UnsafeMutableBufferPointer<Float>,
                   noise: NoiseGenerator, denoise: DenoiseFunction,
                   afterStep: (Int) throws -> Void = { _ in }) throws {
    precondition(latents.count == sampler.elementCount, "sample: latent size does not match the sampler")
    let count = sampler.elementCount
    let modelInput = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    let modelOutput = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    defer {
        modelInput.deallocate()
        modelOutput.deallocate()
    }
    guard let latentBase = latents.baseAddress, let inputBase = modelInput.baseAddress else { return }
    while sampler.stepIndex < sampler.timesteps.count {
        let index = sampler.stepIndex
        let divisor = sampler.modelInputDivisor
        if divisor == 1 {
            _ = modelInput.initialize(fromContentsOf: latents)
        } else {
            LaneMaps.map(inputBase, latentBase, count: count) { $0 / divisor }
        }
        try denoise(UnsafeBufferPointer(modelInput), sampler.timesteps[index], modelOutput)
        try sampler.step(modelOutput: UnsafeBufferPointer(modelOutput), sample: latents, noise: noise)
        try afterStep(index + 1)
    }
}

/// Builds the sampler `kind` for `steps` steps on a latent of `elementCount` floats from a
/// resolved scheduler config (see `SamplerSettings`).
public func makeSampler(_ settings: SamplerSettings, steps: Int, elementCount: Int) throws -> DiffusionSampler {
    guard steps >= 1 else {
        throw SamplingError.invalidSteps(sampler: settings.sampler.rawValue, steps: steps, reason: "need at least 1 step")
    }
    guard elementCount >= 1 else {
        throw SamplingError.invalidSteps(sampler: settings.sampler.rawValue, steps: steps, reason: "empty latent")
    }
    let training = try TrainingSchedule(settings: settings)
    switch settings.sampler {
    case .euler: return try EulerSampler(settings, training, steps: steps, count: elementCount)
    case .eulerAncestral: return try EulerAncestralSampler(settings, training, steps: steps, count: elementCount)
    case .heun: return try HeunSampler(settings, training, steps: steps, count: elementCount)
    case .dpmpp2m: return try DPMSolverSampler(settings, training, steps: steps, count: elementCount, stochastic: false)
    case .dpmpp2mSDE: return try DPMSolverSampler(settings, training, steps: steps, count: elementCount, stochastic: true)
    case .ddim: return try DDIMSampler(settings, training, steps: steps, count: elementCount)
    case .ddpm: return try DDPMSampler(settings, training, steps: steps, count: elementCount)
    case .lms: return try LMSSampler(settings, training, steps: steps, count: elementCount)
    case .lcm: return try LCMSampler(settings, training, steps: steps, count: elementCount)
    }
}

/// A float buffer owned by a sampler, allocated once.
final class LatentBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit { pointer.deallocate() }

    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

/// Shared pieces of the Karras-style (sigma-parameterised) schedulers.
enum KarrasStyle {
    /// `scale_model_input` divisor `(sigma**2 + 1) ** 0.5` in float32.
    static func inputDivisor(_ sigma: Float) -> Float { (sigma * sigma + 1).squareRoot() }

    /// `init_noise_sigma`: max sigma for linspace/trailing spacing, else `(max**2 + 1) ** 0.5`.
    static func initNoiseSigma(_ sigmas: [Float], spacing: TimestepSpacing) -> Float {
        let maximum = sigmas.max() ?? 1
        return spacing == .leading ? (maximum * maximum + 1).squareRoot() : maximum
    }

    /// Interpolated / Karras / exponential sigmas and their (fractional) timesteps, as the
    /// Euler, Heun and LMS `set_timesteps` compute them (without the final sigma).
    /// LMS's `_convert_to_karras` ignores the config's sigma_min / sigma_max
    /// (`karrasUsesConfigBounds: false`); the other classes read them.
    static func sigmasAndTimesteps(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int,
                                   karrasUsesConfigBounds: Bool = true) -> (sigmas: [Double], timesteps: [Double]) {
        var timesteps = SigmaSpacingMath.floatTimesteps(settings, steps: steps)
        var sigmas = timesteps.map { NumpyArith.interpolate($0, training.sigmas) }
        let logSigmas = SigmaSpacingMath.logSigmas(training.sigmas)
        switch settings.sigmaSpacing {
        case .interpolated:
            break
        case .karras:
            let configMin = karrasUsesConfigBounds ? settings.sigmaMin : nil
            let configMax = karrasUsesConfigBounds ? settings.sigmaMax : nil
            sigmas = SigmaSpacingMath.karras(sigmaMin: configMin ?? sigmas[sigmas.count - 1],
                                             sigmaMax: configMax ?? sigmas[0], steps: steps)
            timesteps = sigmas.map { SigmaSpacingMath.sigmaToT($0, logSigmas: logSigmas) }
        case .exponential:
            sigmas = SigmaSpacingMath.exponential(sigmaMin: settings.sigmaMin ?? sigmas[sigmas.count - 1],
                                                  sigmaMax: settings.sigmaMax ?? sigmas[0], steps: steps)
            timesteps = sigmas.map { SigmaSpacingMath.sigmaToT($0, logSigmas: logSigmas) }
        }
        return (sigmas, timesteps)
    }

    /// Predicted denoised sample from the model output at `sigma` (Euler / Heun / LMS `step`).
    @inline(__always)
    static func denoised(_ prediction: PredictionType, sigma: Float, sample: FloatLanes,
                         output: FloatLanes) -> FloatLanes {
        switch prediction {
        case .epsilon:
            return sample - sigma * output
        case .vPrediction:
            // model_output * (-sigma / (sigma**2 + 1) ** 0.5) + (sample / (sigma**2 + 1))
            let sigmaSquaredPlusOne = sigma * sigma + 1
            return output * (-sigma / sigmaSquaredPlusOne.squareRoot()) + sample / sigmaSquaredPlusOne
        case .sample:
            return output
        }
    }
}
