/// A job's choices about a sampler's stochastic steps, beyond what the model's scheduler
/// config holds: k-diffusion's / AUTOMATIC1111's / ComfyUI's `eta`, and restart segments
/// (Xu et al. 2023, "Restart Sampling for Improving Generative Processes"). Which samplers
/// take which option is decided here (`check(for:)`), once for intake and for the engine.
public struct SamplerOptions: Sendable, Equatable, Codable {
    /// `eta`: for `euler_a`, the amount of fresh noise of each ancestral step (k-diffusion's
    /// `sample_euler_ancestral(eta=…)`; 1 = diffusers' `EulerAncestralDiscreteScheduler`, 0 =
    /// plain Euler, above 1 more noise than the ancestral step, capped at the step's sigma);
    /// for `ddim`, DDIMScheduler's `eta` (0 = deterministic, as StableDiffusionPipeline; at most 1).
    /// `nil`: the sampler's default.
    public var eta: Double?
    /// One restart segment (`euler_a` only); `nil`: none.
    public var restart: RestartSegment?

    /// Neither option: every sampler as its diffusers class runs it.
    public var isEmpty: Bool { eta == nil && restart == nil }

    public init(eta: Double? = nil, restart: RestartSegment? = nil) {
        self.eta = eta
        self.restart = restart
    }

    /// Every eta some sampler takes (the widest `SamplerDefinition.etaRange`): what a job file
    /// or config may write before `check(for:)` asks the job's sampler.
    public static var etaBounds: ClosedRange<Double> {
        let ranges = SamplerKind.allCases.compactMap(\.definition.etaRange)
        return (ranges.map(\.lowerBound).min() ?? 0)...(ranges.map(\.upperBound).max() ?? 0)
    }

    /// Throws `SamplingError.invalidOption` when `sampler` has no such option or the value
    /// is outside what it accepts (its `SamplerDefinition`'s `etaRange` and `restarts`).
    public func check(for sampler: SamplerKind) throws {
        if let eta {
            guard let range = sampler.definition.etaRange else {
                let offering = SamplerKind.allCases.filter { $0.definition.etaRange != nil }.map(\.rawValue)
                throw SamplingError.invalidOption(sampler: sampler.rawValue, option: "eta",
                                                  reason: "this sampler has no eta; samplers with one: "
                                                      + offering.joined(separator: ", "))
            }
            guard range.contains(eta), eta.isFinite else {
                throw SamplingError.invalidOption(sampler: sampler.rawValue, option: "eta",
                                                  reason: "\(eta) is outside \(range.lowerBound)…\(range.upperBound)")
            }
        }
        if restart != nil, !sampler.definition.restarts {
            let offering = SamplerKind.allCases.filter { $0.definition.restarts }.map(\.rawValue)
            throw SamplingError.invalidOption(sampler: sampler.rawValue, option: "restart",
                                              reason: "only " + offering.joined(separator: ", ") + " restarts")
        }
    }
}

/// One restart segment, in ComfyUI's restart-sampling order `[steps, times, sigma_min,
/// sigma_max]`: after the main schedule's step that lands on its sigma nearest `sigmaMin`,
/// the sample is noised up to `sigmaMax` (fresh noise of variance sigma_max² − sigma²) and
/// brought back down in `steps` steps of the same sampler over a Karras ramp (rho 7, as
/// AUTOMATIC1111's Restart sampler and the paper's EDM discretisation), `times` times; then
/// the main schedule goes on. Each restart costs `steps` more model evaluations.
public struct RestartSegment: Sendable, Equatable, Codable {
    /// Steps of one restart (1…1000).
    public var steps: Int
    /// How many times the segment is run (1…100).
    public var times: Int
    /// Where the restarts begin and end: snapped to the main schedule's nearest sigma.
    public var sigmaMin: Double
    /// The sigma each restart noises up to; must be above the snapped `sigmaMin`.
    public var sigmaMax: Double

    public init(steps: Int, times: Int, sigmaMin: Double, sigmaMax: Double) {
        self.steps = steps
        self.times = times
        self.sigmaMin = sigmaMin
        self.sigmaMax = sigmaMax
    }

    /// The accepted ranges of the four numbers, for job files, the config and diffusion-bench.
    public static let stepsRange = 1...1000
    public static let timesRange = 1...100
    public static let sigmaRange: ClosedRange<Double> = 0.0001...100_000

    /// `[steps, times, sigma_min, sigma_max]` as a job file writes it.
    public var description: String {
        "[\(steps), \(times), \(Self.format(sigmaMin)), \(Self.format(sigmaMax))]"
    }

    private static func format(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : "\(x)"
    }
}
