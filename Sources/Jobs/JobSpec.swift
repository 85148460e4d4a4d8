import ControlProtocol
import Pipeline
import Sampling

/// One job: a validated YAML document of a job file (`man 5 diffusion-job`), with the
/// service's defaults filled in. `seed` stays `nil` until the intake draws and records one.
public struct JobSpec: Codable, Equatable, Sendable {
    public var prompt: String
    public var negativePrompt: String
    /// Model name from the config's `models` table; `nil` means the config's default.
    public var model: String?
    public var width: Int
    public var height: Int
    public var steps: Int
    public var sampler: SamplerKind
    public var schedule: ScheduleKind
    public var guidance: Float
    /// Seed of the first image; image `i` uses `seed + i`. `nil`: not drawn yet.
    public var seed: UInt64?
    /// Number of images.
    public var count: Int
    /// 0 (lowest) … 100 (highest); always within ``JobPriority/range``.
    public var priority: Int
    /// Write a preview every N steps; 0 = none.
    public var snapshots: Int
    public var rng: RNGKind
    /// `decoder`: `nil` (not given) is the full VAE; `tiny` needs the model's `tiny_vae`.
    public var decoder: DecoderChoice? = nil
    /// Label for the output folder: `[A-Za-z0-9._-]{1,64}`.
    public var name: String?
    /// 1-based index of this job's document within its file.
    public var documentIndex: Int
    /// The document's text as submitted (written to the outbox as `job.yaml`).
    public var sourceText: String

    /// The engine request for image `index` (0-based) of this job. Requires `seed` to be set.
    public func request(image index: Int) -> GenerationRequest {
        GenerationRequest(prompt: prompt, negativePrompt: negativePrompt, width: width, height: height,
                          steps: steps, sampler: sampler, schedule: schedule, guidance: guidance,
                          seed: (seed ?? 0) &+ UInt64(index), rng: rng, decoder: decoder ?? .full)
    }
}

extension JobSpec {
    /// Where seeds drawn for jobs without one come from: 0 ..< 2³², so that a drawn seed fits
    /// tools that take 32-bit seeds, and `seed + count - 1` never overflows.
    public static let drawnSeeds: Range<UInt64> = 0..<(1 << 32)

    /// This spec with its seed resolved: the job's own `seed`, or else one drawn uniformly
    /// from ``drawnSeeds`` with `generator`. The daemon records the result, so a re-run
    /// (after a crash, or `retry`) makes the same images.
    public func resolvingSeed<G: RandomNumberGenerator>(using generator: inout G) -> JobSpec {
        var resolved = self
        if resolved.seed == nil { resolved.seed = UInt64.random(in: JobSpec.drawnSeeds, using: &generator) }
        return resolved
    }

    /// ``resolvingSeed(using:)`` with the system's random number generator.
    public func resolvingSeed() -> JobSpec {
        var generator = SystemRandomNumberGenerator()
        return resolvingSeed(using: &generator)
    }
}

/// Values a job gets for fields it leaves out (config section `defaults`).
public struct JobDefaults: Codable, Equatable, Sendable {
    /// `nil`: the job's model's native size (`NativeImageSize`), as diffusers does.
    public var width: Int?
    /// `nil`: the job's model's native size (`NativeImageSize`), as diffusers does.
    public var height: Int?
    public var steps = 20
    public var sampler = SamplerKind.eulerAncestral
    public var schedule = ScheduleKind.default
    public var guidance: Float = 7.5
    /// Within ``JobPriority/range``.
    public var priority = JobPriority.normal.rawValue
    public var snapshots = 0
    public var rng = RNGKind.cpu
    public init() {}
}

/// Upper bounds on what a job may ask for (config section `limits`).
public struct JobLimits: Codable, Equatable, Sendable {
    public var maxWidth = 1024
    public var maxHeight = 1024
    public var maxSteps = 150
    public var maxCount = 16
    /// Largest job file accepted, in bytes.
    public var maxFileSize = 64 * 1024
    /// Most jobs (YAML documents) in one file.
    public var maxJobsPerFile = 100
    /// Longest prompt or negative prompt, in bytes.
    public var maxPromptBytes = 8 * 1024
    public init() {}
}
