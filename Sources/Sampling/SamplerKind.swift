/// A sampler a job may name. Each maps to exactly one diffusers scheduler class, built
/// with `SchedulerClass.from_config(model's scheduler_config.json)` semantics.
///
/// The samplers are the static members (`.euler`, `.eulerAncestral`, …) that each file
/// under Samplers/ declares with its `SamplerDefinition`; `SamplerRegistry` lists them.
/// Encoded as its raw value, the name jobs use (`"euler_a"`).
public struct SamplerKind: RawRepresentable, Hashable, CaseIterable, Sendable, Codable, CustomStringConvertible {
    /// Everything this port knows about the sampler.
    let definition: SamplerDefinition

    init(_ definition: SamplerDefinition) { self.definition = definition }

    /// The registered sampler named `rawValue` (the name jobs use), or nil.
    public init?(rawValue: String) {
        guard let kind = SamplerRegistry.kinds.first(where: { $0.rawValue == rawValue }) else { return nil }
        self = kind
    }

    /// The name jobs use, e.g. `euler_a`.
    public var rawValue: String { definition.name }

    /// Every sampler, in `SamplerRegistry` order.
    public static var allCases: [SamplerKind] { SamplerRegistry.kinds }

    /// Comma-separated list of valid names, for validation errors.
    public static var validNames: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// Name AUTOMATIC1111 shows for this sampler (used in PNG `parameters` chunks).
    public var automatic1111Name: String { definition.automatic1111Name }

    /// Whether `schedule` changes anything for this sampler's diffusers scheduler
    /// (only the sigma-based ones read `use_karras_sigmas` / `use_exponential_sigmas`).
    public func supports(_ schedule: ScheduleKind) -> Bool {
        schedule == .default || definition.reads.contains(.sigmaSpacing)
    }

    /// The name jobs use (`rawValue`), so logs and test failures read `euler_a`.
    public var description: String { rawValue }

    /// Two kinds are the same sampler when their names are.
    public static func == (lhs: SamplerKind, rhs: SamplerKind) -> Bool { lhs.rawValue == rhs.rawValue }

    /// Hashes the name, like `==`.
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    /// Decodes the raw value, as a `String` enum does.
    public init(from decoder: Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let kind = SamplerKind(rawValue: name) else {
            throw DecodingError.dataCorrupted(DecodingError.Context(
                codingPath: decoder.codingPath,
                debugDescription: "Cannot initialize SamplerKind from invalid String value \(name)"))
        }
        self = kind
    }

    /// Encodes the raw value, as a `String` enum does.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
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
