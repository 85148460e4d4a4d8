import Evaluation
import Foundation
import Kernels
import Models
import Pipeline
import Sampling

/// `diffusion-bench image`: seconds per image and images per hour, end to end (tokenize, text
/// encoder, every denoising step with or without guidance, decode), on random weights of real
/// shapes, with the job options that change the cost.
///
/// `--shapes sd15|sd21|sdturbo` picks the architecture and the defaults a user of that model
/// runs (SD 1.5: euler 25 steps guidance 7.5; SD 2.1 at 768: the same with v-prediction;
/// SD-Turbo, the SD 2.1 architecture at 512: euler_a, 1 step, guidance 0, trailing spacing, as
/// its model card says); `--steps`, `--sampler`, `--guidance`, `--guidance-cutoff`, `--cache N`
/// (DeepCache interval, the job field `cache`), `--tiny-vae` (TAESD decode) and `--size` override
/// them. `--versus-exact` also times the same image without `--guidance-cutoff` and `--cache` on
/// the same pipeline and reports `exact_seconds_per_image`, `exact_cpu_seconds_per_image`,
/// `ratio_to_exact` and `cpu_ratio_to_exact`. The tokenizer is the shipped CLIP vocabulary
/// (`--tokenizer`, default models/clip-tokenizer). Random weights make meaningless pictures at
/// the real cost: the work does not depend on the values. `--save FILE` writes the last image
/// as a binary PPM, so two builds' pictures can be compared (engine changes must not move
/// pixels beyond the references' tolerance).
func runImageBenchmark(_ args: [String]) throws -> Int32 {
    let o = try Options(args, flags: ["tiny-vae", "json", "versus-exact"])
    let allowed: Set<String> = ["shapes", "size", "steps", "sampler", "guidance", "guidance-cutoff", "cache", "tiny-vae",
                                "versus-exact", "iterations", "warmup", "tokenizer", "json", "weights", "save"]
    let bad = o.unknown(allowed: allowed)
    if !bad.isEmpty { throw BenchError.usage("image: unknown option(s) \(bad.joined(separator: ", "))") }
    let shapes = o.string("shapes", default: "sd15")
    struct Preset { var unet: UNetConfig; var text: CLIPTextConfig; var size: Int; var steps: Int
        var sampler: SamplerKind; var guidance: Float; var scheduler: [String: Any]; var pad: String }
    let sdScheduler: [String: Any] = ["beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                                      "num_train_timesteps": 1000, "steps_offset": 1, "set_alpha_to_one": false, "clip_sample": false]
    let preset: Preset
    switch shapes {
    case "sd15":
        preset = Preset(unet: .sd15, text: .sd15, size: 512, steps: 25, sampler: .euler, guidance: 7.5,
                        scheduler: sdScheduler.merging(["prediction_type": "epsilon"]) { $1 }, pad: "<|endoftext|>")
    case "sd21":
        preset = Preset(unet: .sd21, text: .sd21, size: 768, steps: 25, sampler: .euler, guidance: 7.5,
                        scheduler: sdScheduler.merging(["prediction_type": "v_prediction"]) { $1 }, pad: "!")
    case "sdturbo":
        preset = Preset(unet: .sd21, text: .sd21, size: 512, steps: 1, sampler: .eulerAncestral, guidance: 0,
                        scheduler: sdScheduler.merging(["prediction_type": "epsilon", "timestep_spacing": "trailing"]) { $1 },
                        pad: "!")
    default:
        throw BenchError.usage("image: --shapes is sd15, sd21 or sdturbo, got '\(shapes)'")
    }
    let size = try o.int("size", default: preset.size)
    guard size % 8 == 0 else { throw BenchError.usage("--size must be a multiple of 8, got \(size)") }
    let steps = try o.int("steps", default: preset.steps)
    let samplerName = o.string("sampler", default: preset.sampler.rawValue)
    guard let sampler = SamplerKind(rawValue: samplerName) else {
        throw BenchError.usage("unknown sampler '\(samplerName)'; one of \(SamplerKind.validNames)")
    }
    guard let guidance = Float(o.string("guidance", default: "\(preset.guidance)")), guidance >= 0 else {
        throw BenchError.usage("--guidance must be a number ≥ 0")
    }
    var cutoff: Double?
    if let text = o.value("guidance-cutoff") {
        guard let value = Double(text), value > 0, value <= 1 else { throw BenchError.usage("--guidance-cutoff must be in (0, 1]") }
        cutoff = value
    }
    var cache: Int?
    if let text = o.value("cache") {
        guard let value = Int(text), value >= 1 else { throw BenchError.usage("--cache must be a whole number ≥ 1") }
        cache = value
    }
    let iterations = try o.int("iterations", default: 1)
    guard let warmup = Int(o.string("warmup", default: "1")), warmup >= 0 else {
        throw BenchError.usage("--warmup must be a non-negative integer")
    }
    let tokenizerFolder = URL(fileURLWithPath: o.string("tokenizer", default: "models/clip-tokenizer"))

    let pool = ThreadPool.shared
    let t0 = now()
    let tokenizer = try CLIPTokenizer(directory: tokenizerFolder, defaultPadToken: preset.pad)
    let model = try StableDiffusionModel.randomWeights(text: preset.text, unet: preset.unet, vae: .sd, tokenizer: tokenizer,
                                                       weights: try benchWeights(o), pool: pool)
    let schedulerConfig = try SchedulerConfig(json: JSONSerialization.data(withJSONObject: preset.scheduler), path: "<\(shapes) scheduler>")
    let pipeline = try TextToImagePipeline.benchmark(model: model, schedulerConfig: schedulerConfig,
                                                     tinyVAE: o.has("tiny-vae") ? .taesd : nil, pool: pool)
    let buildSeconds = now() - t0
    let request = GenerationRequest(prompt: "a photograph of an astronaut riding a horse", width: size, height: size,
                                    steps: steps, sampler: sampler, guidance: guidance, seed: 1,
                                    decoder: o.has("tiny-vae") ? .tiny : .full, guidanceCutoff: cutoff, cache: cache)
    var last: RGBImage?
    let times = try timeEvaluations(warmup: warmup, iterations: iterations) {
        last = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
    }
    if let path = o.value("save"), let last {
        try PPM.encode(last).write(to: URL(fileURLWithPath: path))
    }
    var exactTimes: EvaluationTimes?
    if o.has("versus-exact") {
        var exact = request
        exact.guidanceCutoff = nil
        exact.cache = nil
        exactTimes = try timeEvaluations(warmup: warmup, iterations: iterations) {
            _ = try pipeline.generate(exact, snapshotEvery: 0) { _ in .proceed }
        }
    }
    var j = JSONLine()
    j.add("bench", "image")
    j.add("shapes", shapes)
    j.add("weights", try benchWeights(o).rawValue)
    j.add("size", size)
    j.add("steps", steps)
    j.add("sampler", sampler.rawValue)
    j.add("guidance", Double(guidance))
    if let cutoff { j.add("guidance_cutoff", cutoff) }
    if let cache { j.add("cache", cache) }
    j.add("decoder", o.has("tiny-vae") ? "tiny" : "full")
    j.add("threads", pool.threadCount)
    j.add("blas", BLASCore.name)
    j.add("avx512", CPUFeatures.useAVX512Kernels)
    j.add("amx", CPUFeatures.useAMX)
    j.add("iterations", iterations)
    times.add(to: &j, per: "image")
    j.add("images_per_hour", 3600 / times.mean)
    if let exactTimes {
        j.add("exact_seconds_per_image", exactTimes.mean)
        j.add("exact_cpu_seconds_per_image", exactTimes.cpu)
        j.add("ratio_to_exact", times.mean / exactTimes.mean)
        // CPU seconds move less than wall time when other processes share the cores.
        j.add("cpu_ratio_to_exact", times.cpu / exactTimes.cpu)
    }
    j.add("peak_rss_mb", peakRSSMegabytes())
    j.add("build_seconds", buildSeconds)
    printLine(j.text)
    return 0
}
