/// The samplers a job may name. Each maps to exactly one diffusers scheduler class,
/// built with `SchedulerClass.from_config(model's scheduler_config.json)` semantics.
public enum SamplerKind: String, CaseIterable, Sendable, Codable {
    /// `EulerDiscreteScheduler`
    case euler
    /// `EulerAncestralDiscreteScheduler`
    case eulerAncestral = "euler_a"
    /// `HeunDiscreteScheduler`
    case heun
    /// `DPMSolverMultistepScheduler` (algorithm_type `dpmsolver++`, solver_order 2)
    case dpmpp2m = "dpm++2m"
    /// `DPMSolverMultistepScheduler` (algorithm_type `sde-dpmsolver++`, solver_order 2)
    case dpmpp2mSDE = "dpm++2m_sde"
    /// `DDIMScheduler`
    case ddim
    /// `DDPMScheduler`
    case ddpm
    /// `LMSDiscreteScheduler`
    case lms
    /// `LCMScheduler`
    case lcm

    /// Comma-separated list of valid names, for validation errors.
    public static var validNames: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// Name AUTOMATIC1111 shows for this sampler (used in PNG `parameters` chunks).
    public var automatic1111Name: String {
        switch self {
        case .euler: return "Euler"
        case .eulerAncestral: return "Euler a"
        case .heun: return "Heun"
        case .dpmpp2m: return "DPM++ 2M"
        case .dpmpp2mSDE: return "DPM++ 2M SDE"
        case .ddim: return "DDIM"
        case .ddpm: return "DDPM"
        case .lms: return "LMS"
        case .lcm: return "LCM"
        }
    }
}

/// Sigma spacing a job may ask for; `default` keeps the scheduler config's own choice.
public enum ScheduleKind: String, CaseIterable, Sendable, Codable {
    /// Whatever the model's scheduler config says.
    case `default`
    /// `use_karras_sigmas=True` (Karras et al. 2022, eq. 5, rho = 7).
    case karras
    /// `use_exponential_sigmas=True`.
    case exponential

    public static var validNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// Which random generator makes the initial latents and the sampler noise.
public enum RNGKind: String, CaseIterable, Sendable, Codable {
    /// Bit-exact port of torch's CPU generator (mt19937 + torch's normal layout). Default.
    case cpu
    /// Bit-exact port of torch's CUDA generator (Philox 4x32-10), AUTOMATIC1111's default seeds.
    case philox

    public static var validNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
