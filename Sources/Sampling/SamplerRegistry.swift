/// The one list of the samplers this port has, in the order `SamplerKind.allCases` and
/// `validNames` give them.
///
/// Each sampler is one file under Samplers/ that declares its `SamplerKind` static (with
/// the `SamplerDefinition` holding every fact about it: names, diffusers class, class
/// defaults, the config keys it reads, its own validation, its factory) and its
/// `DiffusionSampler` class. Swift cannot discover types at run time, so adding a sampler
/// is that one new file, plus one line in this list, plus its tests.
enum SamplerRegistry {
    static let kinds: [SamplerKind] = [
        .euler,
        .eulerAncestral,
        .heun,
        .dpmpp2m,
        .dpmpp2mSDE,
        .ddim,
        .ddpm,
        .lms,
        .lcm,
        .tcd,
    ]
}
