import ControlProtocol
import Models
import Pipeline
import Sampling

/// One job: a validated YAML document of a job file (`man 5 diffusion-job`), with the
/// service's defaults filled in. `seed` stays `nil` until the intake draws and records one.
public struct JobSpec: Codable, Equatable, Sendable {
    public var prompt: String
    public var negativePrompt: String
    /// The job has a `negative_prompt` key, even an empty one (see
    /// `GenerationRequest.negativePromptGiven`: SDXL encodes a given "" and uses zeros for none).
    public var negativePromptGiven = false
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
    /// LoRAs, resolved in `lora_dir` at intake: the `loras` field's entries, then the prompt's
    /// `<lora:name:weight>` tags in order (`prompt` keeps the tags as written).
    public var loras: [LoRASelection]
    /// `long_prompt`: prompts over 75 tokens truncated (default, diffusers) or chunked (AUTOMATIC1111).
    public var longPrompt: LongPromptMode = .truncate
    /// `guidance_cutoff`: the fraction of evaluations with classifier-free guidance (opt-in
    /// approximation); `nil`: every evaluation is guided.
    public var guidanceCutoff: Double? = nil
    /// `init_image` / `init_images`: the picture img2img starts from (a folder until the intake
    /// expands it into one job per picture); `nil`: text-to-image.
    public var initImage: InitImageSource? = nil
    /// `strength` (img2img); `nil`: ``JobSpec/defaultStrength``.
    public var strength: Double? = nil
    /// `resize` (img2img); `nil`: `crop`.
    public var resize: ResizeMode? = nil
    /// `mask` (inpainting, white = repaint): its picture, read at intake like the init image.
    public var mask: InitImageSource? = nil
    /// `mask_blur`: Gaussian blur of the mask in pixels before it is binarised; `nil`: none.
    public var maskBlur: Double? = nil

    /// `upscale` (hires fix): the second pass's scale; `nil`: one pass.
    public var upscale: Double? = nil
    /// `upscale_strength`: the second pass's img2img strength; `nil`: ``JobSpec/defaultUpscaleStrength``.
    public var upscaleStrength: Double? = nil
    /// AUTOMATIC1111's default hires-fix denoising strength.
    public static let defaultUpscaleStrength = 0.7

    /// `grid`: the cells this job makes and lays out in `grid.png`; `nil`: no grid.
    public var grid: JobGrid? = nil

    /// The hires fix the job asks for, if any.
    public var hires: HiresFix? { upscale.map { HiresFix(scale: $0, strength: upscaleStrength ?? JobSpec.defaultUpscaleStrength) } }

    /// The strength the job runs with: its own, else diffusers' default of its pipeline
    /// (`StableDiffusionInpaintPipeline` 1.0 with a mask, `StableDiffusionImg2ImgPipeline` 0.8).
    public var effectiveStrength: Double { strength ?? (mask != nil ? 1.0 : JobSpec.defaultStrength) }

    /// diffusers' `StableDiffusionImg2ImgPipeline` default `strength`.
    public static let defaultStrength = 0.8

    /// `cache`: DeepCache's interval N (opt-in approximation: the whole UNet on every Nth
    /// evaluation, its shallow branch on the others); `nil`: every evaluation is whole.
    public var cache: Int? = nil

    /// `eta` and `restart`: the sampler's stochastic steps (`SamplerOptions`); empty: none given.
    public var samplerOptions = SamplerOptions()

    /// Steps per image with the restart segment's: `steps` + its steps × times. What
    /// `limits.max_steps` bounds and what the queue's time estimates count.
    public var stepsWithRestarts: Int { steps + (samplerOptions.restart.map { $0.steps * $0.times } ?? 0) }

    public init(prompt: String, negativePrompt: String, model: String?, width: Int, height: Int, steps: Int,
                sampler: SamplerKind, schedule: ScheduleKind, guidance: Float, seed: UInt64?, count: Int,
                priority: Int, snapshots: Int, rng: RNGKind, name: String?, documentIndex: Int, sourceText: String,
                loras: [LoRASelection] = []) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.model = model
        self.width = width
        self.height = height
        self.steps = steps
        self.sampler = sampler
        self.schedule = schedule
        self.guidance = guidance
        self.seed = seed
        self.count = count
        self.priority = priority
        self.snapshots = snapshots
        self.rng = rng
        self.name = name
        self.documentIndex = documentIndex
        self.sourceText = sourceText
        self.loras = loras
    }

    /// The engine request for image `index` (0-based) of this job. Requires `seed` to be set.
    /// The prompt loses its `<lora:…>` tags, as AUTOMATIC1111's `parse_prompt` removes them.
    public func request(image index: Int) -> GenerationRequest {
        GenerationRequest(prompt: PromptLoRATags.stripped(prompt), negativePrompt: negativePrompt, width: width, height: height,
                          steps: steps, sampler: sampler, schedule: schedule, guidance: guidance,
                          seed: (seed ?? 0) &+ UInt64(index), rng: rng, loras: loras, decoder: decoder ?? .full, longPrompt: longPrompt,
                          guidanceCutoff: guidanceCutoff, strength: effectiveStrength, hires: hires, cache: cache,
                          negativePromptGiven: negativePromptGiven, samplerOptions: samplerOptions)
    }

    /// The prompt as AUTOMATIC1111 records it in the image metadata: as written, its
    /// `<lora:…>` tags kept, plus a tag for each LoRA of the `loras` field, so the recorded
    /// text brings the same LoRAs back in the web UI.
    public var recordedPrompt: String {
        let tagged = Set(((try? PromptLoRATags.tags(in: prompt)) ?? []).map(\.name))
        let extra = loras.filter { !tagged.contains($0.name) }
            .map { "<lora:\($0.name):\(A1111Parameters.format($0.weight))>" }
        return extra.isEmpty ? prompt : ([prompt] + extra).joined(separator: " ")
    }
}

extension JobSpec {
    private enum CodingKeys: String, CodingKey {
        case prompt, negativePrompt, model, width, height, steps, sampler, schedule, guidance, seed, count
        case priority, snapshots, rng, name, documentIndex, sourceText, loras, decoder, longPrompt, guidanceCutoff
        case initImage, strength, resize, mask, maskBlur, upscale, upscaleStrength, grid, cache, negativePromptGiven
        case eta, restart
    }

    /// Leaves `loras` out when empty, `decoder` when not given and `longPrompt` when
    /// `truncate`, so the journal of a job without them reads as before.
    public func encode(to encoder: Encoder) throws {
        let always: [(CodingKeys, any Encodable)] = [
            (.prompt, prompt), (.negativePrompt, negativePrompt), (.width, width), (.height, height), (.steps, steps),
            (.sampler, sampler), (.schedule, schedule), (.guidance, guidance), (.count, count), (.priority, priority),
            (.snapshots, snapshots), (.rng, rng), (.documentIndex, documentIndex), (.sourceText, sourceText),
        ]
        let whenSet: [(CodingKeys, (any Encodable)?)] = [
            (.model, model), (.seed, seed), (.name, name), (.loras, loras.isEmpty ? nil : loras), (.decoder, decoder),
            (.longPrompt, longPrompt == .truncate ? nil : longPrompt), (.guidanceCutoff, guidanceCutoff),
            (.initImage, initImage), (.strength, strength), (.resize, resize), (.mask, mask), (.maskBlur, maskBlur),
            (.upscale, upscale), (.upscaleStrength, upscaleStrength), (.grid, grid), (.cache, cache),
            (.negativePromptGiven, negativePromptGiven ? true : nil),
            (.eta, samplerOptions.eta), (.restart, samplerOptions.restart),
        ]
        var c = encoder.container(keyedBy: CodingKeys.self)
        for (key, value) in always { try c.encode(value, forKey: key) }
        for case let (key, value?) in whenSet { try c.encode(value, forKey: key) }
    }

    /// Decodes a spec journalled before `loras`, `decoder` or `longPrompt` existed as one
    /// without LoRAs, on the full VAE, that truncates.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(prompt: try c.decode(String.self, forKey: .prompt),
                  negativePrompt: try c.decode(String.self, forKey: .negativePrompt),
                  model: try c.decodeIfPresent(String.self, forKey: .model),
                  width: try c.decode(Int.self, forKey: .width), height: try c.decode(Int.self, forKey: .height),
                  steps: try c.decode(Int.self, forKey: .steps), sampler: try c.decode(SamplerKind.self, forKey: .sampler),
                  schedule: try c.decode(ScheduleKind.self, forKey: .schedule),
                  guidance: try c.decode(Float.self, forKey: .guidance), seed: try c.decodeIfPresent(UInt64.self, forKey: .seed),
                  count: try c.decode(Int.self, forKey: .count), priority: try c.decode(Int.self, forKey: .priority),
                  snapshots: try c.decode(Int.self, forKey: .snapshots), rng: try c.decode(RNGKind.self, forKey: .rng),
                  name: try c.decodeIfPresent(String.self, forKey: .name),
                  documentIndex: try c.decode(Int.self, forKey: .documentIndex),
                  sourceText: try c.decode(String.self, forKey: .sourceText),
                  loras: try c.decodeIfPresent([LoRASelection].self, forKey: .loras) ?? [])
        self.decoder = try c.decodeIfPresent(DecoderChoice.self, forKey: .decoder)
        self.longPrompt = try c.decodeIfPresent(LongPromptMode.self, forKey: .longPrompt) ?? .truncate
        self.guidanceCutoff = try c.decodeIfPresent(Double.self, forKey: .guidanceCutoff)
        self.initImage = try c.decodeIfPresent(InitImageSource.self, forKey: .initImage)
        self.strength = try c.decodeIfPresent(Double.self, forKey: .strength)
        self.resize = try c.decodeIfPresent(ResizeMode.self, forKey: .resize)
        self.mask = try c.decodeIfPresent(InitImageSource.self, forKey: .mask)
        self.maskBlur = try c.decodeIfPresent(Double.self, forKey: .maskBlur)
        self.upscale = try c.decodeIfPresent(Double.self, forKey: .upscale)
        self.upscaleStrength = try c.decodeIfPresent(Double.self, forKey: .upscaleStrength)
        self.grid = try c.decodeIfPresent(JobGrid.self, forKey: .grid)
        self.cache = try c.decodeIfPresent(Int.self, forKey: .cache)
        self.negativePromptGiven = try c.decodeIfPresent(Bool.self, forKey: .negativePromptGiven) ?? false
        self.samplerOptions = SamplerOptions(eta: try c.decodeIfPresent(Double.self, forKey: .eta),
                                             restart: try c.decodeIfPresent(RestartSegment.self, forKey: .restart))
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
        // A grid's cells share the job's seed unless seed is an axis.
        if var grid = resolved.grid {
            for k in grid.cells.indices where grid.cells[k].seed == nil { grid.cells[k].seed = resolved.seed }
            resolved.grid = grid
        }
        return resolved
    }

    /// ``resolvingSeed(using:)`` with the system's random number generator.
    public func resolvingSeed() -> JobSpec {
        var generator = SystemRandomNumberGenerator()
        return resolvingSeed(using: &generator)
    }

    /// This spec with its seed resolved without chance: the job's own `seed`, or else one
    /// derived from `key` (the last four bytes of the first eight of its SHA-256, as a
    /// big-endian number, so within ``drawnSeeds``). `--oneshot` passes the job's folder
    /// name and text, so every task of a sharded batch, and every rerun, agrees on the seed
    /// of a job that gives none.
    public func resolvingSeed(derivedFrom key: String) -> JobSpec {
        var resolved = self
        if resolved.seed == nil {
            var hash = SHA256()
            hash.update(Array(key.utf8))
            let digest = hash.finalize()
            resolved.seed = digest[4..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        return resolved
    }
}

/// Values a job gets for fields it leaves out (config section `defaults`).
public struct JobDefaults: Codable, Equatable, Sendable {
    /// `nil`: the job's model's native size (`NativeImageSize`), as diffusers does.
    public var width: Int?
    /// `nil`: the job's model's native size (`NativeImageSize`), as diffusers does.
    public var height: Int?
    // The built-in defaults equal the shipped etc/diffusiond.yaml `defaults:` (the built-in
    // model's entry sets its card's own over them: euler_a, guidance 1.5), so a job gives the same
    // picture under the daemon as shipped and under `--oneshot` without a config on models
    // without their own. man 5 diffusiond.yaml lists them.
    public var steps = 25
    public var sampler = SamplerKind.euler
    public var schedule = ScheduleKind.default
    public var guidance: Float = 5
    /// Within ``JobPriority/range``.
    public var priority = JobPriority.normal.rawValue
    public var snapshots = 0
    public var rng = RNGKind.cpu
    /// `eta` and `restart` (`SamplerOptions`); jobs whose sampler has no such option drop them.
    public var eta: Double?
    public var restart: RestartSegment?
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
    /// Most jobs one file may become (`max_jobs_per_file`): its documents, each multiplied by
    /// its pictures (`init_images`), its prompts (`prompts`, `prompts_file`) and its grid cells.
    public var maxJobsPerFile = 10_000
    /// Longest prompt or negative prompt, in bytes.
    public var maxPromptBytes = 8 * 1024
    /// Largest input picture file (`init_image`), in bytes.
    public var maxInputBytes = 32 << 20
    /// Most pixels of an input picture, read from its header before decoding.
    public var maxInputPixels = 4096 * 4096
    public init() {}
}

/// Where a job's img2img picture comes from, as the job file names it (made absolute).
public struct InitImageSource: Codable, Equatable, Sendable {
    /// Absolute path of the picture (or of the folder, before the intake expands it).
    public var path: String
    /// `init_images: DIR/`: a folder, one job per picture in it.
    public var isFolder: Bool
    /// Where the field is in the job file, for errors found when the file is read.
    public var line: Int
    public var column: Int
    /// The picture's format once read at intake (its copy is `input.<ext>` in the job's folder).
    public var format: InputImageFormat?
    // Made only by the job parser (this module): the memberwise initializer serves.
}
