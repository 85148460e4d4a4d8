import Foundation
import Kernels
import Models

/// Options shared by `unet`, `vae` and `text`.
struct ModelBenchOptions {
    var shapes = "sd15"
    var size = 512
    var batch = 2
    var iterations = 2
    var warmup = 1
    /// `vae --tiny`: the tiny autoencoder (TAESD) instead of AutoencoderKL.
    var tiny = false
    /// `--weights f16|f32`: layer weights kept in IEEE half (widened in the kernels) or fp32.
    var weights = WeightPrecision.f32
    /// `--profile`: also print the wall time of every operator (`OperatorProfile`).
    var profile = false
    /// `--paced`: wait for a line on stdin before each timed evaluation (`timeEvaluations`).
    var paced = false

    init(_ args: [String], command: String, defaultBatch: Int) throws {
        let o = try Options(args, flags: command == "vae" ? ["json", "tiny", "profile", "paced"] : ["json", "profile", "paced"])
        let common: Set<String> = ["json", "shapes", "size", "batch", "iterations", "warmup", "weights", "profile", "paced"]
        let bad = o.unknown(allowed: command == "vae" ? common.union(["tiny"]) : common)
        tiny = o.has("tiny")
        profile = o.has("profile")
        paced = o.has("paced")
        OperatorProfile.isEnabled = profile
        if !bad.isEmpty { throw BenchError.usage("\(command): unknown option(s) \(bad.joined(separator: ", "))") }
        shapes = o.string("shapes", default: "sd15")
        size = try o.int("size", default: 512)
        batch = try o.int("batch", default: defaultBatch)
        iterations = try o.int("iterations", default: 2)
        if let w = Int(o.string("warmup", default: "1")), w >= 0 { warmup = w } else {
            throw BenchError.usage("--warmup must be a non-negative integer")
        }
        guard size % 8 == 0 else { throw BenchError.usage("--size must be a multiple of 8, got \(size)") }
        weights = try benchWeights(o)
    }
}

/// `--weights f16|f32` (random weights are fp32, so `stored` is `f32`).
func benchWeights(_ o: Options) throws -> WeightPrecision {
    let text = o.string("weights", default: "f32")
    guard let w = WeightPrecision(rawValue: text), w != .stored else { throw BenchError.usage("--weights: f16 or f32, got '\(text)'") }
    return w
}

/// What `timeEvaluations` measured: every counted evaluation's wall seconds, and the CPU seconds
/// of all of them.
struct EvaluationTimes {
    /// Wall seconds of each counted evaluation, in order (the `times` of the JSON line, as
    /// bench_torch.py and bench_openvino.py print them: their spread shows a busy host).
    var walls: [Double] = []
    var cpuSeconds = 0.0
    /// Mean wall seconds per evaluation.
    var mean: Double { walls.isEmpty ? 0 : walls.reduce(0, +) / Double(walls.count) }
    /// Shortest wall seconds of one evaluation.
    var best: Double { walls.min() ?? 0 }
    /// Mean CPU seconds per evaluation (all threads).
    var cpu: Double { walls.isEmpty ? 0 : cpuSeconds / Double(walls.count) }

    /// Adds the mean, best, CPU and per-evaluation fields to `j` under `unit` ("eval", "image").
    func add(to j: inout JSONLine, per unit: String) {
        j.add("seconds_per_\(unit)", mean)
        j.add("best_seconds_per_\(unit)", best)
        j.add("cpu_seconds_per_\(unit)", cpu)
        j.add("times", walls)
    }
}

/// Times `body` `warmup + iterations` times; the first `warmup` runs size the model's
/// workspace and are not counted. When `paced`, each timed run waits for its turn: the line
/// `# ready` on stdout, then a line on stdin (end of input stops the timing early), and the
/// line `# done SECONDS` after it, so `tools/bench/compare.py --paced` can alternate engines
/// evaluation by evaluation (bench_torch.py's `time_evaluations` speaks the same protocol).
func timeEvaluations(warmup: Int, iterations: Int, paced: Bool = false, _ body: () throws -> Void) throws -> EvaluationTimes {
    for _ in 0..<warmup { try body() }
    OperatorProfile.reset()
    var times = EvaluationTimes()
    for _ in 0..<iterations {
        if paced {
            printLine("# ready")
            if readLine() == nil { break }
        }
        let c0 = processCPUSeconds(), t0 = now()
        try body()
        times.walls.append(now() - t0)
        times.cpuSeconds += processCPUSeconds() - c0
        if paced { printLine("# done \(times.walls[times.walls.count - 1])") }
    }
    if times.walls.isEmpty && iterations > 0 { throw BenchError.usage("--paced: input ended before the first evaluation") }
    return times
}

func report(_ what: String, _ o: ModelBenchOptions, flops: Double, times: EvaluationTimes,
            loadSeconds: Double, rssAfterLoad: Double, workspaceBytes: Int, extra: [(String, Double)] = []) {
    var j = JSONLine()
    j.add("bench", what)
    j.add("shapes", o.shapes)
    j.add("weights", o.weights.rawValue)
    j.add("size", o.size)
    j.add("batch", o.batch)
    j.add("threads", ThreadPool.shared.threadCount)
    j.add("blas", BLASCore.name)
    j.add("avx512", CPUFeatures.useAVX512Kernels)
    j.add("amx", CPUFeatures.useAMX)
    j.add("iterations", times.walls.count)
    times.add(to: &j, per: "eval")
    j.add("gflop_per_eval", flops / 1e9)
    j.add("gflops", flops / times.mean / 1e9)
    j.add("gflops_per_cpu_s", flops / max(times.cpu, 1e-9) / 1e9)
    j.add("peak_rss_mb", peakRSSMegabytes())
    j.add("rss_after_load_mb", rssAfterLoad)
    j.add("workspace_mb", Double(workspaceBytes) / 1_048_576)
    j.add("build_seconds", loadSeconds)
    for (k, v) in extra { j.add(k, v) }
    printLine(j.text)
    if o.profile { reportProfile(iterations: times.walls.count, secondsPerEval: times.mean) }
}

/// `--profile`: one JSON line per operator and shape (most time first), then one for the
/// time in operators `OperatorProfile` does not wrap (normalisations, activations,
/// element-wise passes, thread hand-offs between operators).
func reportProfile(iterations: Int, secondsPerEval: Double) {
    let n = Double(max(iterations, 1))
    var wrapped = 0.0
    for e in OperatorProfile.entries() {
        var j = JSONLine()
        j.add("operator", e.name)
        j.add("calls_per_eval", Double(e.calls) / n)
        j.add("seconds_per_eval", e.seconds / n)
        j.add("share", e.seconds / n / secondsPerEval)
        printLine(j.text)
        wrapped += e.seconds / n
    }
    var j = JSONLine()
    j.add("operator", "(the rest)")
    j.add("seconds_per_eval", secondsPerEval - wrapped)
    j.add("share", (secondsPerEval - wrapped) / secondsPerEval)
    printLine(j.text)
}

/// The UNet architectures `unet --shapes` knows. SDXL-Turbo, -Lightning and Hyper-SD share
/// `sdxl`'s (run Turbo's case as `--shapes sdxl --size 512 --batch 1`).
func unetConfig(_ shapes: String) throws -> UNetConfig {
    switch shapes {
    case "sd15": return UNetConfig.sd15
    case "sd21": return UNetConfig.sd21
    case "sdxl": return UNetConfig.sdxl
    case "ssd1b": return UNetConfig.ssd1b
    case "vega": return UNetConfig.vega
    default: throw BenchError.usage("--shapes: sd15, sd21, sdxl, ssd1b or vega, got '\(shapes)'")
    }
}

/// SDXL's extra UNet inputs for a square `size` image, as StableDiffusionXLPipeline makes them
/// by default: random pooled text embeddings and time ids (size, size, 0, 0, size, size).
func benchAdditionalConditioning(_ config: UNetConfig, batch: Int, size: Int) throws -> UNetAdditionalConditioning? {
    guard let a = config.additionEmbedding else { return nil }
    guard let width = a.textEmbedsWidth(timeIDCount: 6) else {
        throw BenchError.usage("projection_class_embeddings_input_dim \(a.inputDim) has no room for 6 time ids of \(a.timeEmbedDim)")
    }
    let text = Tensor(zeros: [batch, width])
    fillRandom(text, seed: 4, pool: .shared)
    let s = Float(size)
    let ids = Tensor(shape: [batch, 6], values: Array((0..<batch).map { _ in [s, s, 0, 0, s, s] }.joined()))
    return UNetAdditionalConditioning(textEmbeds: text, timeIDs: ids)
}

/// `diffusion-bench unet`: one UNet evaluation (batch 2 = the cond + uncond pair of one
/// guided step) on random weights of the real shapes.
func runUNetBenchmark(_ args: [String]) throws -> Int32 {
    let o = try ModelBenchOptions(args, command: "unet", defaultBatch: 2)
    let config = try unetConfig(o.shapes)
    let rssBefore = peakRSSMegabytes()
    let t0 = now()
    let unet = try UNet.randomWeights(config: config, seed: 1, weights: o.weights, pool: .shared)
    let loadSeconds = now() - t0
    let rssAfterLoad = peakRSSMegabytes()
    let lat = o.size / 8
    let sample = Tensor(zeros: [o.batch, config.inChannels, lat, lat])
    fillRandom(sample, seed: 2, pool: .shared)
    let context = Tensor(zeros: [o.batch, 77, config.crossAttentionDim])
    fillRandom(context, seed: 3, pool: .shared)
    let output = Tensor(zeros: [o.batch, config.outChannels, lat, lat])
    let added = try benchAdditionalConditioning(config, batch: o.batch, size: o.size)
    log(6, "unet: \(o.shapes) \(o.size)x\(o.size) batch \(o.batch), weights built in \(String(format: "%.1f", loadSeconds)) s")
    let times = try timeEvaluations(warmup: o.warmup, iterations: o.iterations, paced: o.paced) {
        unet(sample: sample, timestep: 500, context: context, added: added, output: output)
    }
    report("unet", o, flops: unetFlops(config, n: o.batch, h: lat, w: lat, contextLength: 77), times: times,
           loadSeconds: loadSeconds, rssAfterLoad: rssAfterLoad, workspaceBytes: unet.workspaceBytes,
           extra: [("weights_rss_mb", rssAfterLoad - rssBefore)])
    return 0
}

/// `diffusion-bench vae`: one VAE decode of a size×size image from its latents; with
/// `--tiny`, TAESD's (`AutoencoderTiny`) instead of AutoencoderKL's. `--shapes sdxl` is the
/// same computation: SDXL's VAE (stabilityai/sdxl-vae) has SD's shapes (channels 128, 256,
/// 512, 512, 2 layers per block, 4 latent channels, 32 groups; only `scaling_factor`,
/// 0.13025, differs, which a decode of given latents does not use), as TAESDXL has TAESD's.
func runVAEBenchmark(_ args: [String]) throws -> Int32 {
    let o = try ModelBenchOptions(args, command: "vae", defaultBatch: 1)
    guard o.shapes == "sd15" || o.shapes == "sdxl" else {
        throw BenchError.usage("--shapes: 'sd15' or 'sdxl' (the same VAE shapes), got '\(o.shapes)'")
    }
    let lat = o.size / 8
    let t0 = now()
    let bench: String, latentChannels: Int, outChannels: Int, flops: Double
    let decode: (Tensor, Tensor) -> Void, workspaceBytes: () -> Int
    if o.tiny {
        let vae = try TinyVAE.randomWeights(config: .taesd, seed: 1, pool: .shared)
        (bench, latentChannels, outChannels) = ("tiny_vae_decode", vae.config.latentChannels, vae.config.outChannels)
        (decode, workspaceBytes) = ({ vae.decode($0, output: $1) }, { vae.workspaceBytes })
        flops = vae.decodeFlops(batch: o.batch, height: lat, width: lat)
    } else {
        let config = VAEConfig.sd
        let vae = try VAE.randomWeights(config: config, seed: 1, weights: o.weights, pool: .shared)
        (bench, latentChannels, outChannels) = ("vae_decode", config.latentChannels, config.outChannels)
        (decode, workspaceBytes) = ({ vae.decode($0, output: $1) }, { vae.workspaceBytes })
        flops = vaeDecodeFlops(config, n: o.batch, h: lat, w: lat)
    }
    let loadSeconds = now() - t0
    let rssAfterLoad = peakRSSMegabytes()
    let latents = Tensor(zeros: [o.batch, latentChannels, lat, lat])
    fillRandom(latents, seed: 2, pool: .shared)
    let image = Tensor(zeros: [o.batch, outChannels, o.size, o.size])
    let times = try timeEvaluations(warmup: o.warmup, iterations: o.iterations, paced: o.paced) { decode(latents, image) }
    report(bench, o, flops: flops, times: times, loadSeconds: loadSeconds, rssAfterLoad: rssAfterLoad,
           workspaceBytes: workspaceBytes())
    return 0
}

/// `diffusion-bench text`: CLIP text encoder on `batch` prompts of 77 tokens; `--shapes sdxl`:
/// SDXL's two encoders as its pipeline runs them.
func runTextBenchmark(_ args: [String]) throws -> Int32 {
    let o = try ModelBenchOptions(args, command: "text", defaultBatch: 2)
    if o.shapes == "sdxl" { return try runSDXLTextBenchmark(o) }
    let config: CLIPTextConfig
    switch o.shapes {
    case "sd15": config = .sd15
    case "sd21": config = .sd21   // OpenCLIP ViT-H, 23 layers: SD 2.x and SD-Turbo
    default: throw BenchError.usage("--shapes: 'sd15', 'sd21' or 'sdxl', got '\(o.shapes)'")
    }
    let t0 = now()
    let encoder = try CLIPTextEncoder.randomWeights(config: config, seed: 1, weights: o.weights, pool: .shared)
    let loadSeconds = now() - t0
    let rssAfterLoad = peakRSSMegabytes()
    let ids = (0..<o.batch).map { b in (0..<77).map { t in (b * 7919 + t * 104_729) % config.vocabSize } }
    let output = Tensor(zeros: [o.batch, 77, config.hiddenSize])
    let times = try timeEvaluations(warmup: o.warmup, iterations: o.iterations, paced: o.paced) { try encoder.encode(ids, output: output) }
    report("text", o, flops: encoder.flops(batch: o.batch, length: 77), times: times,
           loadSeconds: loadSeconds, rssAfterLoad: rssAfterLoad, workspaceBytes: 0)
    return 0
}

/// `text --shapes sdxl`: `text_encoder` (CLIP ViT-L, `CLIPTextConfig.sd15`) to its penultimate
/// hidden states and `text_encoder_2` (OpenCLIP bigG with projection, `.sdxlBigG`) to its
/// penultimate states and pooled `text_embeds`, as StableDiffusionXLPipeline.encode_prompt
/// needs them. The FLOP count is the work done: the first encoder's last layer is not run
/// (PyTorch's `output_hidden_states` runs and counts it).
func runSDXLTextBenchmark(_ o: ModelBenchOptions) throws -> Int32 {
    let t0 = now()
    let first = try CLIPTextEncoder.randomWeights(config: .sd15, seed: 1, weights: o.weights, pool: .shared)
    let second = try CLIPTextEncoder.randomWeights(config: .sdxlBigG, projection: true, seed: 2, weights: o.weights,
                                                    pool: .shared)
    let loadSeconds = now() - t0
    let rssAfterLoad = peakRSSMegabytes()
    let c1 = first.config, c2 = second.config
    let ids = (0..<o.batch).map { b in (0..<77).map { t in (b * 7919 + t * 104_729) % c1.vocabSize } }
    let states1 = Tensor(zeros: [o.batch, 77, c1.hiddenSize]), states2 = Tensor(zeros: [o.batch, 77, c2.hiddenSize])
    let pooled = Tensor(zeros: [o.batch, second.projectionWidth ?? 0])
    let times = try timeEvaluations(warmup: o.warmup, iterations: o.iterations, paced: o.paced) {
        try first.encodePenultimate(ids, output: states1)
        try second.encodePenultimate(ids, output: states2, pooled: pooled)
    }
    let layers1 = Double(c1.numHiddenLayers)
    let flops = first.flops(batch: o.batch, length: 77) * (layers1 - 1) / layers1 + second.flops(batch: o.batch, length: 77)
    report("text", o, flops: flops, times: times, loadSeconds: loadSeconds, rssAfterLoad: rssAfterLoad, workspaceBytes: 0)
    return 0
}
