import ControlProtocol
import Foundation
import Jobs
import XCTest

final class ServiceConfigTests: XCTestCase {
    let base = URL(fileURLWithPath: "/srv/diffusion/etc")

    func parse(_ text: String) throws -> ServiceConfig {
        try ServiceConfig.parse(bytes: Array(text.utf8), file: "d.yaml", base: base)
    }

    func testRelativePathsResolveAgainstTheConfigFolder() throws {
        let config = try parse("""
        inbox: ../spool/in
        outbox: /var/out
        state: st
        threads: 3
        models:
          default: b
          a: ../models/a
          b: /m/b
        limits:
          max_width: 256
          max_count: 4
        defaults:
          width: 128
          sampler: heun
          snapshots: 5
        """)
        XCTAssertEqual(config.inbox.path, "/srv/diffusion/spool/in")
        XCTAssertEqual(config.outbox.path, "/var/out")
        XCTAssertEqual(config.state.path, "/srv/diffusion/etc/st")
        XCTAssertEqual(config.socket.path, "/srv/diffusion/etc/spool/run/diffusiond.sock")
        XCTAssertEqual(config.threads, 3)
        XCTAssertEqual(config.models["a"]?.path.path, "/srv/diffusion/models/a")
        XCTAssertEqual(config.defaultModel, "b")
        XCTAssertEqual(config.limits.maxWidth, 256)
        XCTAssertEqual(config.limits.maxCount, 4)
        XCTAssertEqual(config.limits.maxSteps, 150)
        XCTAssertEqual(config.defaults.width, 128)
        XCTAssertEqual(config.defaults.sampler, .heun)
        XCTAssertEqual(config.defaults.snapshots, 5)
        XCTAssertEqual(config.jobParser.knownModels, ["a", "b"])
    }

    /// Single-file checkpoints: a path ending in .safetensors, or the mapping form with
    /// `tokenizer` and `prediction`; `clip_tokenizer` fills in the tokenizer of single files
    /// only, never of folders or of an entry that names its own.
    func testSingleFileModelEntries() throws {
        let config = try parse("""
        clip_tokenizer: ../models/clip-tokenizer
        models:
          folder: ../models/shapes
          plain: /m/dreamshaper_8.safetensors
          base:
            path: /m/v2-1_512-ema-pruned.safetensors
            prediction: epsilon
          own: {path: x.safetensors, tokenizer: /t, prediction: v}
        """)
        XCTAssertEqual(config.clipTokenizer?.path, "/srv/diffusion/models/clip-tokenizer")
        XCTAssertEqual(config.models["folder"]?.isSingleFile, false)
        XCTAssertNil(config.models["folder"]?.tokenizer)
        XCTAssertEqual(config.models["plain"]?.isSingleFile, true)
        XCTAssertEqual(config.models["plain"]?.tokenizer?.path, "/srv/diffusion/models/clip-tokenizer")
        XCTAssertNil(config.models["plain"]?.prediction)
        XCTAssertEqual(config.models["base"]?.path.path, "/m/v2-1_512-ema-pruned.safetensors")
        XCTAssertEqual(config.models["base"]?.prediction, .epsilon)
        XCTAssertEqual(config.models["own"]?.path.path, "/srv/diffusion/etc/x.safetensors")
        XCTAssertEqual(config.models["own"]?.tokenizer?.path, "/t")
        XCTAssertEqual(config.models["own"]?.prediction, .vPrediction)
    }

    /// `tiny_vae` in the mapping form names an AutoencoderTiny folder, for folders and single
    /// files alike; the parser's lookup says which models have one (the default included).
    func testTinyVAEEntries() throws {
        let config = try parse("""
        models:
          default: sd15
          sd15:
            path: /m/sd15
            tiny_vae: ../taesd
          dreamshaper: {path: /m/d.safetensors, tokenizer: /t, tiny_vae: /m/taesd}
          plain: /m/plain
        """)
        XCTAssertEqual(config.models["sd15"]?.tinyVAE?.path, "/srv/diffusion/taesd")
        XCTAssertEqual(config.models["dreamshaper"]?.tinyVAE?.path, "/m/taesd")
        XCTAssertNil(config.models["plain"]?.tinyVAE)
        let lookup = config.tinyVAELookup
        XCTAssertTrue(lookup(nil))
        XCTAssertTrue(lookup("dreamshaper"))
        XCTAssertFalse(lookup("plain"))
        XCTAssertFalse(lookup("unknown"))
        XCTAssertNotNil(config.jobParser.tinyVAE)
    }

    /// A model entry's own `defaults:` apply over the config's to jobs on that model only
    /// (`model:` given or the default model), whatever order the sections come in.
    func testModelEntryDefaults() throws {
        let config = try parse("""
        models:
          default: turbo
          turbo:
            path: /m/sd_turbo.safetensors
            defaults: {steps: 1, guidance: 0, sampler: euler_a}
          sd15: /m/sd15
        defaults:
          steps: 30
          snapshots: 2
        """)
        XCTAssertEqual(config.modelDefaults["turbo"]?.steps, 1)
        XCTAssertEqual(config.modelDefaults["turbo"]?.guidance, 0)
        XCTAssertEqual(config.modelDefaults["turbo"]?.sampler, .eulerAncestral)
        XCTAssertEqual(config.modelDefaults["turbo"]?.snapshots, 2, "the rest comes from the config's defaults")
        XCTAssertNil(config.modelDefaults["sd15"])
        var parser = config.jobParser
        parser.schedulerConfig = nil
        parser.nativeSize = { _ in NativeImageSize(width: 64, height: 64, vaeFactor: 8) }
        let jobs = try parser.parse(bytes: Array("prompt: a\n---\nprompt: b\nmodel: sd15\n---\nprompt: c\nmodel: turbo\nsteps: 4\n".utf8), file: "j.yaml")
        XCTAssertEqual(jobs.map(\.steps), [1, 30, 4])
        XCTAssertEqual(jobs.map(\.sampler), [.eulerAncestral, .euler, .eulerAncestral])
        XCTAssertEqual(jobs.map(\.guidance), [0, 5, 0])
        XCTAssertThrowsError(try parse("models:\n  t:\n    path: /m/t\n    defaults: {priority: 90}\n")) { error in
            XCTAssertEqual("\(error)", "d.yaml:4:16: field 'models.t.defaults.priority': unknown key; valid: width, height, steps, sampler, schedule, guidance, snapshots, rng, eta, restart")
        }
        XCTAssertThrowsError(try parse("defaults:\n  steps: 3\nmodels:\n  t: {path: /m/t, defaults: {steps: 0}}\n")) { error in
            XCTAssertTrue("\(error)".hasPrefix("d.yaml:4:37: field 'models.t.defaults.steps': "), "\(error)")
        }
    }

    func testSingleFileModelEntryErrors() {
        let cases: [(String, String)] = [
            ("models:\n  a:\n    path: /m/a.safetensors\n    prediction: x0\n",
             "d.yaml:4:17: field 'models.a.prediction': \"x0\" is not epsilon or v"),
            ("models:\n  a:\n    path: /m/a\n    prediction: v\n",
             "d.yaml:4:17: field 'models.a.prediction': only for single-file checkpoints; a folder's scheduler_config.json sets prediction_type"),
            ("models:\n  a:\n    prediction: v\n", "d.yaml:3:5: field 'models.a.path': missing: the model's folder or .safetensors file"),
            ("models:\n  a: {path: /m/a.safetensors, vae: /v}\n", "d.yaml:2:31: field 'models.a.vae': unknown key; valid: path, prediction, tokenizer, tiny_vae, weights, defaults"),
            ("models:\n  a: /m/a.safetensors\n  a: /m/b\n", "d.yaml:3:3: field 'models.a': duplicate key"),
            ("models:\n  default: {path: x}\n", "d.yaml:2:12: field 'models.default': expected a model name"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try parse(text), text) { XCTAssertEqual("\($0)", expected, text) }
        }
    }

    func testModelEntryWeightsSetting() throws {
        let config = try parse("models:\n  a: {path: /m/a, weights: f16}\n  b: {path: /m/b.safetensors, weights: f32}\n  c: /m/c\n")
        XCTAssertEqual(config.models["a"]?.weights, .f16)
        XCTAssertEqual(config.models["b"]?.weights, .f32)
        XCTAssertEqual(config.models["c"]?.weights, .stored, "fp16/bf16 kept as stored, fp32 as fp32 unless asked")
        XCTAssertThrowsError(try parse("models:\n  a:\n    path: /m/a\n    weights: f8\n")) {
            XCTAssertEqual("\($0)", "d.yaml:4:14: field 'models.a.weights': unknown value \"f8\"; valid: stored, f16, f32")
        }
    }

    func testSingleModelIsTheDefault() throws {
        XCTAssertEqual(try parse("models:\n  only: /m\n").defaultModel, "only")
    }

    /// The config's default priority is read as a job file's is: a name or 0–100.
    func testDefaultPriorityTakesANameOrANumber() throws {
        XCTAssertEqual(try parse("defaults:\n  priority: high\n").defaults.priority, JobPriority.high.rawValue)
        XCTAssertEqual(try parse("defaults:\n  priority: 7\n").defaults.priority, 7)
        XCTAssertThrowsError(try parse("defaults:\n  priority: soon\n")) {
            XCTAssertEqual("\($0)", "d.yaml:2:13: field 'defaults.priority': unknown value \"soon\"; valid: \(JobPriority.validValuesText)")
        }
        XCTAssertThrowsError(try parse("defaults:\n  priority: 101\n")) {
            XCTAssertEqual("\($0)", "d.yaml:2:13: field 'defaults.priority': \"101\" is out of range; expected a whole number from 0 to 100")
        }
    }

    func testErrors() {
        let cases: [(String, String)] = [
            ("inbox: a\nspool: b\n", "d.yaml:2:1: field 'spool': unknown key; valid: inbox, outbox, state, socket, threads, rescan_interval, keep_history, models, clip_tokenizer, limits, defaults, lora_dir, wildcards_dir"),
            ("limits:\n  max_widht: 5\n", "d.yaml:2:3: field 'limits.max_widht': unknown key; valid: max_width, max_height, max_steps, max_count, max_file_size, max_jobs_per_file, max_prompt_bytes, max_input_bytes, max_input_pixels"),
            ("threads: many\n", "d.yaml:1:10: field 'threads': expected a whole number from 0 to 1024, got \"many\""),
            ("models:\n  default: x\n  y: /m\n", "d.yaml:2:12: field 'models.default': names \"x\", which is not in models"),
            ("inbox: a\ninbox: b\n", "d.yaml:2:1: field 'inbox': duplicate key"),
            ("defaults:\n  width: 65\n", "d.yaml:2:10: field 'defaults.width': 65 is not a multiple of 8"),
            ("defaults:\n  steps: 4\n  height: 100\n", "d.yaml:3:11: field 'defaults.height': 100 is not a multiple of 8"),
            ("defaults:\n  sampler: fast\n", "d.yaml:2:12: field 'defaults.sampler': unknown value \"fast\"; valid: euler, euler_a, heun, dpm++2m, dpm++2m_sde, ddim, ddpm, lms, lcm, tcd"),
            ("defaults:\n  guidance: .nan\n", "d.yaml:2:13: field 'defaults.guidance': must be a finite number, got \".nan\""),
            ("models: [a, b]\n", "d.yaml:1:9: field 'models': expected a mapping of key: value lines"),
            ("inbox: &x a\n", "d.yaml:1:8: YAML anchors (&name) are not allowed"),
            ("- a\n", "d.yaml:1:1: the config is a mapping of key: value lines"),
            ("", "d.yaml:1:1: empty config file"),
            ("inbox: a\n---\ninbox: b\n", "d.yaml:2:1: the config file holds one YAML document only"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try parse(text), text) { XCTAssertEqual("\($0)", expected, text) }
        }
    }

    func testUnreadableConfigSaysWhy() {
        XCTAssertThrowsError(try ServiceConfig.load(path: "/nonexistent/diffusiond.yaml")) {
            XCTAssertEqual("\($0)", "/nonexistent/diffusiond.yaml:0:0: cannot read the config file: no such file")
        }
        XCTAssertThrowsError(try ServiceConfig.load(path: NSTemporaryDirectory())) {
            XCTAssertTrue("\($0)".hasSuffix(": cannot read the config file: is a directory"), "\($0)")
        }
    }

    func testShippedConfigParses() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("etc/diffusiond.yaml").path
        let config = try ServiceConfig.load(path: path)
        XCTAssertEqual(config.defaultModel, "shapes")
        XCTAssertTrue(config.models["shapes"]?.path.path.hasSuffix("/models/shapes") ?? false)
        XCTAssertTrue(config.inbox.path.hasSuffix("/spool/inbox"))
        // The built-in values; no size, so jobs get the model's native 64×64.
        XCTAssertNil(config.defaults.width)
        XCTAssertNil(config.defaults.height)
        XCTAssertEqual(config.defaults.sampler, .euler)
        XCTAssertEqual(config.defaults.steps, 25)
        XCTAssertEqual(config.defaults.guidance, 5)
        // The built-in model's card settings, in its entry's own defaults.
        XCTAssertEqual(config.modelDefaults["shapes"]?.guidance, 1.5)
        XCTAssertEqual(config.modelDefaults["shapes"]?.sampler, .eulerAncestral)
        // And they are the built-in ones (a job under --oneshot without a config, and
        // diffusion-bench adherence / variety, get those).
        XCTAssertEqual(config.defaults, JobDefaults())
        let job = try XCTUnwrap(try config.jobParser.parse(bytes: Array("prompt: a red circle\n".utf8), file: "j.yaml").first)
        XCTAssertEqual([job.width, job.height], [64, 64])
        XCTAssertEqual(job.guidance, 1.5)
        XCTAssertEqual(job.sampler, .eulerAncestral)
    }
}
