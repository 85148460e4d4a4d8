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
    /// `scheduler.order`: evaluations per step (2 for Heun, whose timesteps repeat).
    var order: Int { get }
    /// `set_begin_index(index)`: the next evaluation is `index` (img2img starts part-way,
    /// at `t_start * order`, as `StableDiffusionImg2ImgPipeline.get_timesteps` does).
    /// Only before the first `step`.
    func begin(atStepIndex index: Int)
    /// `scheduler.add_noise(sample, noise, timesteps[stepIndex])` in place, for the step the
    /// sampler is at (its begin index): the noised latent img2img starts from.
    func addNoise(to sample: UnsafeMutableBufferPointer<Float>, noise: UnsafeBufferPointer<Float>)
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

/// Builds the sampler `settings.sampler` for `steps` steps on a latent of `elementCount`
/// floats from a resolved scheduler config (see `SamplerSettings`), with the factory of
/// its `SamplerDefinition`.
public func makeSampler(_ settings: SamplerSettings, steps: Int, elementCount: Int) throws -> DiffusionSampler {
    guard steps >= 1 else {
        throw SamplingError.invalidSteps(sampler: settings.sampler.rawValue, steps: steps, reason: "need at least 1 step")
    }
    guard elementCount >= 1 else {
        throw SamplingError.invalidSteps(sampler: settings.sampler.rawValue, steps: steps, reason: "empty latent")
    }
    try settings.options.check(for: settings.sampler)
    let training = try TrainingSchedule(settings: settings)
    return try settings.sampler.definition.build(settings, training, steps, elementCount)
}

/// What every sampler reports through `DiffusionSampler`: its kind, latent size, the
/// schedule fixed at construction (`timesteps`, `sigmas`, `init_noise_sigma`) and the step
/// index that `step` advances. Each sampler subclasses it, adds `modelInputDivisor` and
/// `step`, and declares the `DiffusionSampler` conformance itself.
class SamplerBase {
    let kind: SamplerKind
    let elementCount: Int
    let timesteps: [Float]
    /// Empty for the alpha-parameterised samplers (DDIM, DDPM, LCM).
    let sigmas: [Float]
    let initNoiseSigma: Float
    final private(set) var stepIndex = 0

    init(kind: SamplerKind, elementCount: Int, timesteps: [Float], sigmas: [Float] = [], initNoiseSigma: Float = 1) {
        self.kind = kind
        self.elementCount = elementCount
        self.timesteps = timesteps
        self.sigmas = sigmas
        self.initNoiseSigma = initNoiseSigma
    }

    /// Moves on to the next evaluation; the last thing `step` does.
    final func advance() { stepIndex += 1 }

    /// Evaluations per step; Heun overrides it.
    var order: Int { 1 }

    final func begin(atStepIndex index: Int) {
        precondition(stepIndex == 0 && index >= 0 && index < timesteps.count, "begin(atStepIndex:) out of range or after a step")
        stepIndex = index
    }

    /// The sigma-parameterised schedulers' `add_noise` (Euler, Euler ancestral, Heun, LMS):
    /// `original_samples + noise * sigmas[step_index]`, the product rounded on its own.
    /// The alpha-parameterised ones and DPM-Solver override it.
    func addNoise(to sample: UnsafeMutableBufferPointer<Float>, noise: UnsafeBufferPointer<Float>) {
        guard let x = sample.baseAddress, let n = noise.baseAddress else { return }
        let sigma = sigmas[stepIndex]
        LaneMaps.map(x, x, n, count: min(sample.count, noise.count)) { s, e in s + e * sigma }
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
