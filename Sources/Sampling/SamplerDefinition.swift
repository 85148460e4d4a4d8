/// Everything this port knows about one sampler, declared in that sampler's own file
/// under Samplers/ (as the `SamplerKind` static it defines) and listed once in
/// `SamplerRegistry`: the names, the diffusers class and the facts of its `__init__` that
/// `SamplerSettings` needs to resolve a scheduler config the way
/// `SchedulerClass.from_config(config)` would, and the factory that builds the sampler.
struct SamplerDefinition: Sendable {
    /// The name jobs use (`sampler: euler_a`); `SamplerKind.rawValue`.
    let name: String
    /// The name AUTOMATIC1111 shows (PNG `parameters` chunks).
    let automatic1111Name: String
    /// The diffusers scheduler class the sampler reproduces.
    let diffusersClass: String
    /// The class's `__init__` defaults for the keys every class has.
    let defaults: SchedulerDefaults
    /// The optional config keys the class reads; `from_config` drops the others.
    let reads: SchedulerKeys
    /// What the class does with `rescale_betas_zero_snr`.
    let zeroTerminalSNR: ZeroTerminalSNR
    /// The values a job's `eta` may take with this sampler (`SamplerOptions`); nil: no eta.
    var etaRange: ClosedRange<Double>? = nil
    /// Whether a job's `restart` segment applies (`SamplerOptions`, `RestartSegment`).
    var restarts = false
    /// Extra `prediction_type` spellings the class accepts (Euler: `original_sample`).
    var predictionTypeAliases: [String: PredictionType] = [:]
    /// The class's own keys: sets the fields only it reads and throws
    /// `SamplingError.unsupported` for values this port leaves out. Runs last in
    /// `SamplerSettings.init`, on settings with every shared field resolved.
    var configure: @Sendable (_ settings: inout SamplerSettings, _ config: SchedulerConfig) throws -> Void = { _, _ in }
    /// Builds the sampler for `steps` steps on a latent of `count` floats.
    let build: @Sendable (_ settings: SamplerSettings, _ training: TrainingSchedule,
                          _ steps: Int, _ count: Int) throws -> DiffusionSampler
}

/// `__init__` defaults of the config keys every scheduler class has (diffusers 0.42).
struct SchedulerDefaults: Sendable {
    /// `beta_start`, `beta_end`, `beta_schedule`.
    var betaStart: Double
    var betaEnd: Double
    var betaSchedule: BetaSchedule
    /// `timestep_spacing`.
    var timestepSpacing: TimestepSpacing
    /// `clip_sample`, for the classes that read it (`SchedulerKeys.clipSample`).
    var clipSample: Bool = false
}

/// Optional scheduler config keys, by whether a class's `__init__` has them.
struct SchedulerKeys: OptionSet, Sendable {
    let rawValue: Int

    /// `use_karras_sigmas` / `use_exponential_sigmas` / `use_beta_sigmas` (and so a job's
    /// `schedule`), `sigma_min` / `sigma_max`.
    static let sigmaSpacing = SchedulerKeys(rawValue: 1 << 0)
    /// `final_sigmas_type` (`zero` or `sigma_min`).
    static let finalSigmasType = SchedulerKeys(rawValue: 1 << 1)
    /// `clip_sample`, `clip_sample_range`.
    static let clipSample = SchedulerKeys(rawValue: 1 << 2)
    /// `thresholding` (dynamic thresholding; this port rejects `true`).
    static let thresholding = SchedulerKeys(rawValue: 1 << 3)
}

/// What a scheduler class does with `rescale_betas_zero_snr` (see `TrainingSchedule`).
enum ZeroTerminalSNR: Sendable, Equatable {
    /// The class has no such option and ignores the key.
    case notRead
    /// Rescales the betas; the last `alphas_cumprod` stays exactly 0.
    case exactZero
    /// Rescales the betas, then sets the last `alphas_cumprod` to 2^-24 (fp16's smallest
    /// subnormal), "close to 0 without being 0 so first sigma is not inf".
    case terminalNudged
}
