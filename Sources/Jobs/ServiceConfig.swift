import ControlProtocol
import Foundation
import Models
import Pipeline
import Sampling

/// The service configuration (`man 5 diffusiond.yaml`), read with libyaml; unknown keys are
/// rejected. Relative paths are resolved against the directory of the config file.
public struct ServiceConfig: Equatable, Sendable {
    /// Folder watched for job files.
    public var inbox: URL
    /// Folder that receives `<job-id>/` result folders and `rejected/`.
    public var outbox: URL
    /// Folder holding the persisted queue and claimed job files.
    public var state: URL
    /// Unix socket of the control server.
    public var socket: URL
    /// Model name → a diffusers folder or a single-file checkpoint (with its tokenizer and
    /// prediction override; a single file without its own `tokenizer` gets `clipTokenizer`).
    public var models: [String: ModelReference]
    /// `defaults:` of a model entry over the config's `defaults:`, by model name (a Turbo or
    /// LCM model's jobs then need no settings); models without their own are not listed.
    public var modelDefaults: [String: JobDefaults]
    /// CLIP vocabulary folder for single-file checkpoints (`clip_tokenizer`; shipped as
    /// `models/clip-tokenizer`).
    public var clipTokenizer: URL?
    /// Name used by jobs that name no model.
    public var defaultModel: String?
    /// Folder of LoRA `.safetensors` files jobs may name; `nil`: jobs cannot use LoRAs.
    public var loraDirectory: URL?
    /// Folder of wildcard files (`<name>.txt`) for `__name__` in prompts; `nil`: none.
    public var wildcardsDirectory: URL?
    /// Cores the engine uses; 0 = all.
    public var threads: Int
    /// Seconds between safety-net rescans of the inbox.
    public var rescanInterval: Int
    /// Finished jobs remembered for `history` (older ones live on in the outbox only).
    public var keepHistory: Int
    public var limits: JobLimits
    public var defaults: JobDefaults

    /// A configuration rooted at `base` with the spool under `base/spool`.
    public init(base: URL) {
        inbox = base.appendingPathComponent("spool/inbox")
        outbox = base.appendingPathComponent("spool/outbox")
        state = base.appendingPathComponent("spool/state")
        socket = base.appendingPathComponent("spool/run/diffusiond.sock")
        models = [:]
        modelDefaults = [:]
        clipTokenizer = nil
        defaultModel = nil
        threads = 0
        rescanInterval = 30
        keepHistory = 1000
        limits = JobLimits()
        defaults = JobDefaults()
    }

    /// Top-level keys, for error messages.
    public static let keys = ["inbox", "outbox", "state", "socket", "threads", "rescan_interval", "keep_history",
                              "models", "clip_tokenizer", "limits", "defaults", "lora_dir", "wildcards_dir"]
    /// Keys of a `models:` entry written as a mapping.
    static let modelEntryKeys = ["path", "prediction", "tokenizer", "tiny_vae", "weights", "defaults"]
    /// Keys of a model entry's own `defaults:` (what changes how its images are made).
    static let modelDefaultKeys = ["width", "height", "steps", "sampler", "schedule", "guidance", "snapshots", "rng", "eta", "restart"]
    static let limitKeys = ["max_width", "max_height", "max_steps", "max_count", "max_file_size",
                            "max_jobs_per_file", "max_prompt_bytes", "max_input_bytes", "max_input_pixels"]
    static let defaultKeys = ["width", "height", "steps", "sampler", "schedule", "guidance", "priority", "snapshots", "rng", "eta", "restart"]

    /// Reads and validates the config file at `path`.
    public static func load(path: String) throws -> ServiceConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory: ObjCBool = false
            let why = !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) ? "no such file"
                : isDirectory.boolValue ? "is a directory" : "not readable by this user"
            throw SourceError(file: path, line: 0, column: 0, message: "cannot read the config file: \(why)")
        }
        let url = URL(fileURLWithPath: path).standardizedFileURL
        return try parse(bytes: [UInt8](data), file: path, base: url.deletingLastPathComponent())
    }

    /// Parses config text; relative paths resolve against `base`.
    public static func parse(bytes: [UInt8], file: String, base: URL) throws -> ServiceConfig {
        guard bytes.count <= 1 << 20 else {
            throw SourceError(file: file, line: 0, column: 0, message: "config file is larger than 1 MiB")
        }
        var config = ServiceConfig(base: base)
        // Depth 5: models > NAME > defaults > restart's list is the deepest the schema goes.
        let stream = try YAMLEventStream(bytes: bytes, file: file, limits: YAMLSafetyLimits(maxDepth: 5, maxScalarBytes: 4096))
        let d = ScalarDecoder(file: file)
        func fail(_ m: SourceMark, _ field: String?, _ message: String) -> SourceError {
            SourceError(file: file, line: m.line, column: m.column, field: field, message: message)
        }
        func path(_ text: String, _ plain: Bool, _ field: String, _ mark: SourceMark) throws -> URL {
            let p = try d.string(text, plain: plain, field: field, mark: mark, maxBytes: 4096)
            return p.hasPrefix("/") ? URL(fileURLWithPath: p).standardizedFileURL
                : base.appendingPathComponent(p).standardizedFileURL
        }
        /// Reads `key: scalar` pairs of a nested mapping, calling `handle` for each.
        func section(_ name: String, keys: [String]?, list: ((String, SourceMark) throws -> Void)? = nil,
                     _ handle: (String, String, Bool, SourceMark, SourceMark) throws -> Void) throws {
            let (start, startMark) = try stream.next()
            guard start == .mappingStart else { throw fail(startMark, name, "expected a mapping of key: value lines") }
            try pairs(name, keys: keys, list: list, handle)
        }
        /// A `defaults:` list value (only `restart` is one), whose sequence start was read.
        func restartDefault(_ key: String, _ listMark: SourceMark, field: String) throws -> RestartSegment {
            guard key == "restart" else { throw fail(listMark, "\(field).\(key)", "expected a single value") }
            return try d.restart(try d.scalarList(stream, field: "\(field).restart"), field: "\(field).restart", listMark: listMark)
        }
        /// The `key: scalar` pairs of a mapping whose start was read, up to its end.
        func pairs(_ name: String, keys: [String]?, nested: ((String, SourceMark) throws -> Void)? = nil,
                   list: ((String, SourceMark) throws -> Void)? = nil,
                   _ handle: (String, String, Bool, SourceMark, SourceMark) throws -> Void) throws {
            var seen = Set<String>()
            while true {
                let (k, kMark) = try stream.next()
                if k == .mappingEnd { return }
                guard case .scalar(let key, _) = k else { throw fail(kMark, name, "keys must be plain words") }
                let field = "\(name).\(key)"
                if let keys, !keys.contains(key) {
                    throw fail(kMark, field, "unknown key; valid: \(keys.joined(separator: ", "))")
                }
                guard seen.insert(key).inserted else { throw fail(kMark, field, "duplicate key") }
                let (v, vMark) = try stream.next()
                if v == .mappingStart, let nested {
                    try nested(key, vMark)
                    continue
                }
                if v == .sequenceStart, let list {
                    try list(key, vMark)
                    continue
                }
                guard case .scalar(let text, let plain) = v else { throw fail(vMark, field, "expected a single value") }
                try handle(key, text, plain, kMark, vMark)
            }
        }

        /// A `models:` entry written as a mapping (its start was read): `path` (required),
        /// `prediction: epsilon|v` and `tokenizer` (single-file checkpoints only), `tiny_vae`,
        /// `weights: stored|f16|f32` (how layer weights are kept in memory, `WeightPrecision`).
        /// One `defaults:` key into `defaults` (the config's section and model entries share it).
        func applyDefault(_ name: String, _ text: String, _ plain: Bool, _ m: SourceMark, field: String,
                          to defaults: inout JobDefaults) throws {
            switch name {
            case "width", "height":
                let side = try d.integer(text, plain: plain, field: field, mark: m, range: 8...8192)
                guard side % 8 == 0 else { throw fail(m, field, "\(side) is not a multiple of 8") }
                if name == "width" { defaults.width = side } else { defaults.height = side }
            case "steps": defaults.steps = try d.integer(text, plain: plain, field: field, mark: m, range: 1...10000)
            case "sampler": defaults.sampler = try d.choice(text, plain: plain, field: field, mark: m, parse: SamplerKind.init(rawValue:), validNames: SamplerKind.validNames)
            case "schedule": defaults.schedule = try d.choice(text, plain: plain, field: field, mark: m, parse: ScheduleKind.init(rawValue:), validNames: ScheduleKind.validNames)
            case "rng": defaults.rng = try d.choice(text, plain: plain, field: field, mark: m, parse: RNGKind.init(rawValue:), validNames: RNGKind.validNames)
            case "guidance": defaults.guidance = Float(try d.number(text, plain: plain, field: field, mark: m, range: 0...50))
            case "eta": defaults.eta = try d.number(text, plain: plain, field: field, mark: m, range: SamplerOptions.etaBounds)
            case "restart": throw fail(m, field, "expected a list [steps, times, sigma_min, sigma_max]")
            case "priority": defaults.priority = try d.priority(text, plain: plain, field: field, mark: m)
            default: defaults.snapshots = try d.integer(text, plain: plain, field: field, mark: m, range: 0...10000)
            }
        }
        /// Model entries' own defaults as read, applied over `defaults:` once the whole file is read.
        var rawModelDefaults: [String: [(name: String, text: String, plain: Bool, mark: SourceMark)]] = [:]
        /// Model entries' own `defaults.restart`, read as they come, with where each was written.
        var modelRestarts: [String: (segment: RestartSegment, mark: SourceMark)] = [:]
        /// Where the config's `defaults:` set `eta` and `restart`.
        var defaultOptionMarks: [String: SourceMark] = [:]
        /// A `defaults:` section's `eta` and `restart` must suit its sampler (`SamplerOptions`),
        /// so that no job on it is refused for a default; `marks` are where they were written.
        func checkOptions(_ defaults: JobDefaults, field: String, marks: [String: SourceMark]) throws {
            do {
                try SamplerOptions(eta: defaults.eta, restart: defaults.restart).check(for: defaults.sampler)
            } catch let error as SamplingError {
                guard case let .invalidOption(_, option, _) = error else { throw error }
                throw fail(marks[option] ?? SourceMark(line: 1, column: 1), "\(field).\(option)", "\(error)")
            }
        }

        func modelEntry(_ field: String, _ mark: SourceMark) throws -> ModelReference {
            var entryPath: URL?
            var prediction: CheckpointPrediction?
            var predictionMark: SourceMark?
            var tokenizer: URL?
            var tinyVAE: URL?
            var weights = WeightPrecision.stored
            let modelName = String(field.dropFirst("models.".count))
            let nested: (String, SourceMark) throws -> Void = { key, valueMark in
                guard key == "defaults" else { throw fail(valueMark, "\(field).\(key)", "expected a single value") }
                var raws: [(name: String, text: String, plain: Bool, mark: SourceMark)] = []
                let list: (String, SourceMark) throws -> Void = { key, listMark in
                    modelRestarts[modelName] = (try restartDefault(key, listMark, field: "\(field).defaults"), listMark)
                }
                try pairs("\(field).defaults", keys: modelDefaultKeys, list: list) { name, text, plain, _, m in raws.append((name, text, plain, m)) }
                rawModelDefaults[modelName] = raws
            }
            try pairs(field, keys: modelEntryKeys, nested: nested) { key, text, plain, _, valueMark in
                switch key {
                case "defaults": throw fail(valueMark, "\(field).defaults", "expected a mapping of key: value lines")
                case "path": entryPath = try path(text, plain, "\(field).path", valueMark)
                case "tokenizer": tokenizer = try path(text, plain, "\(field).tokenizer", valueMark)
                case "tiny_vae": tinyVAE = try path(text, plain, "\(field).tiny_vae", valueMark)
                case "weights":
                    weights = try d.choice(text, plain: plain, field: "\(field).weights", mark: valueMark,
                                           parse: WeightPrecision.init(rawValue:), validNames: WeightPrecision.names)
                default:
                    let value = try d.string(text, plain: plain, field: "\(field).prediction", mark: valueMark, maxBytes: 64)
                    guard let parsed = CheckpointPrediction(configValue: value) else {
                        throw fail(valueMark, "\(field).prediction", "\(SourceError.quote(value)) is not epsilon or v")
                    }
                    prediction = parsed
                    predictionMark = valueMark
                }
            }
            guard let entryPath else { throw fail(mark, "\(field).path", "missing: the model's folder or .safetensors file") }
            let entry = ModelReference(path: entryPath, prediction: prediction, tokenizer: tokenizer, tinyVAE: tinyVAE,
                                       weights: weights)
            if !entry.isSingleFile, let predictionMark {
                throw fail(predictionMark, "\(field).prediction", "only for single-file checkpoints; a folder's scheduler_config.json sets prediction_type")
            }
            return entry
        }

        var (event, mark) = try stream.next()
        guard event == .documentStart else { throw fail(mark, nil, "empty config file") }
        (event, mark) = try stream.next()
        guard event == .mappingStart else { throw fail(mark, nil, "the config is a mapping of key: value lines") }
        var seen = Set<String>()
        var defaultMark = mark
        while true {
            let (k, kMark) = try stream.next()
            if k == .mappingEnd { break }
            guard case .scalar(let key, _) = k else { throw fail(kMark, nil, "keys must be plain words") }
            guard keys.contains(key) else {
                throw fail(kMark, SourceError.oneLine(String(key.prefix(40))), "unknown key; valid: \(keys.joined(separator: ", "))")
            }
            guard seen.insert(key).inserted else { throw fail(kMark, key, "duplicate key") }
            switch key {
            case "models":
                // `name: PATH` (a folder or a .safetensors file), or `name: {path, prediction, tokenizer}`.
                let (start, startMark) = try stream.next()
                guard start == .mappingStart else { throw fail(startMark, "models", "expected a mapping of key: value lines") }
                while true {
                    let (k, keyMark) = try stream.next()
                    if k == .mappingEnd { break }
                    guard case .scalar(let name, _) = k else { throw fail(keyMark, "models", "keys must be plain words") }
                    let field = "models.\(name)"
                    guard name == "default" ? config.defaultModel == nil : config.models[name] == nil else {
                        throw fail(keyMark, field, "duplicate key")
                    }
                    if name != "default" && !JobFileParser.isValidName(name) {
                        throw fail(keyMark, field, "a model name is 1 to 64 letters, digits, '.', '_', '-'")
                    }
                    let (v, valueMark) = try stream.next()
                    switch v {
                    case .scalar(let text, let plain) where name == "default":
                        config.defaultModel = try d.string(text, plain: plain, field: field, mark: valueMark, maxBytes: 64)
                        defaultMark = valueMark
                    case .scalar(let text, let plain):
                        config.models[name] = ModelReference(path: try path(text, plain, field, valueMark))
                    case .mappingStart where name != "default":
                        config.models[name] = try modelEntry(field, valueMark)
                    default:
                        throw fail(valueMark, field, name == "default" ? "expected a model name"
                                   : "expected a path, or a mapping with path, prediction, tokenizer, tiny_vae, weights")
                    }
                }
            case "limits":
                try section("limits", keys: limitKeys) { name, text, plain, _, m in
                    let field = "limits.\(name)"
                    switch name {
                    case "max_width": config.limits.maxWidth = try d.integer(text, plain: plain, field: field, mark: m, range: 8...8192)
                    case "max_height": config.limits.maxHeight = try d.integer(text, plain: plain, field: field, mark: m, range: 8...8192)
                    case "max_steps": config.limits.maxSteps = try d.integer(text, plain: plain, field: field, mark: m, range: 1...10000)
                    case "max_count": config.limits.maxCount = try d.integer(text, plain: plain, field: field, mark: m, range: 1...10000)
                    case "max_file_size": config.limits.maxFileSize = try d.integer(text, plain: plain, field: field, mark: m, range: 64...(16 << 20))
                    case "max_jobs_per_file": config.limits.maxJobsPerFile = try d.integer(text, plain: plain, field: field, mark: m, range: 1...100_000)
                    case "max_input_bytes": config.limits.maxInputBytes = try d.integer(text, plain: plain, field: field, mark: m, range: 1024...(1 << 30))
                    case "max_input_pixels": config.limits.maxInputPixels = try d.integer(text, plain: plain, field: field, mark: m, range: 64...(1 << 28))
                    default: config.limits.maxPromptBytes = try d.integer(text, plain: plain, field: field, mark: m, range: 1...(1 << 20))
                    }
                }
            case "defaults":
                var restart: RestartSegment?
                var marks: [String: SourceMark] = [:]
                let list: (String, SourceMark) throws -> Void = { key, listMark in
                    restart = try restartDefault(key, listMark, field: "defaults")
                    marks["restart"] = listMark
                }
                try section("defaults", keys: defaultKeys, list: list) { name, text, plain, _, m in
                    try applyDefault(name, text, plain, m, field: "defaults.\(name)", to: &config.defaults)
                    if name == "eta" { marks["eta"] = m }
                }
                if let restart { config.defaults.restart = restart }
                defaultOptionMarks = marks
            default:
                let (v, m) = try stream.next()
                guard case .scalar(let text, let plain) = v else { throw fail(m, key, "expected a single value") }
                switch key {
                case "inbox": config.inbox = try path(text, plain, key, m)
                case "outbox": config.outbox = try path(text, plain, key, m)
                case "state": config.state = try path(text, plain, key, m)
                case "socket": config.socket = try path(text, plain, key, m)
                case "clip_tokenizer": config.clipTokenizer = try path(text, plain, key, m)
                case "lora_dir": config.loraDirectory = try path(text, plain, key, m)
                case "wildcards_dir": config.wildcardsDirectory = try path(text, plain, key, m)
                case "threads": config.threads = try d.integer(text, plain: plain, field: key, mark: m, range: 0...1024)
                case "rescan_interval": config.rescanInterval = try d.integer(text, plain: plain, field: key, mark: m, range: 1...86400)
                default: config.keepHistory = try d.integer(text, plain: plain, field: key, mark: m, range: 0...1_000_000)
                }
            }
        }
        (event, mark) = try stream.next()
        guard event == .documentEnd else { throw fail(mark, nil, "unexpected content after the config") }
        (event, mark) = try stream.next()
        guard event == .streamEnd else { throw fail(mark, nil, "the config file holds one YAML document only") }
        if let name = config.defaultModel, config.models[name] == nil {
            throw fail(defaultMark, "models.default", "names \(SourceError.quote(name)), which is not in models")
        }
        if config.defaultModel == nil, config.models.count == 1 { config.defaultModel = config.models.keys.first }
        try checkOptions(config.defaults, field: "defaults", marks: defaultOptionMarks)
        for (name, raws) in rawModelDefaults {
            var own = config.defaults
            for raw in raws { try applyDefault(raw.name, raw.text, raw.plain, raw.mark, field: "models.\(name).defaults.\(raw.name)", to: &own) }
            if let restart = modelRestarts[name] { own.restart = restart.segment }
            // eta and restart go with the sampler they were given for: an entry naming its own
            // sampler keeps only the ones it gives itself.
            if raws.contains(where: { $0.name == "sampler" }) {
                if !raws.contains(where: { $0.name == "eta" }) { own.eta = nil }
                if modelRestarts[name] == nil { own.restart = nil }
            }
            var marks: [String: SourceMark] = [:]
            marks["eta"] = raws.last(where: { $0.name == "eta" })?.mark
            marks["restart"] = modelRestarts[name]?.mark
            try checkOptions(own, field: "models.\(name).defaults", marks: marks)
            config.modelDefaults[name] = own
        }
        for (name, entry) in config.models where entry.isSingleFile && entry.tokenizer == nil {
            config.models[name]?.tokenizer = config.clipTokenizer
        }
        return config
    }

    /// Job parser configured by this config's limits, defaults, model names and `lora_dir`; a
    /// size that neither a job nor `defaults` sets is the native size of the job's model folder;
    /// chunked prompts are counted with the job's model's tokenizer (each loaded once per parser).
    public var jobParser: JobFileParser {
        var parser = JobFileParser(limits: limits, defaults: defaults, knownModels: Set(models.keys), nativeSize: nativeSizeLookup,
                                   loraDirectory: loraDirectory, schedulerConfig: schedulerConfigLookup, tinyVAE: tinyVAELookup,
                                   promptTokenizer: PromptTokenizers(models: models, defaultModel: defaultModel).lookup,
                                   modelDefaults: modelDefaultsLookup)
        parser.wildcards = wildcardsDirectory.map(WildcardLibrary.init(directory:))
        parser.modelFamily = modelFamilyLookup
        return parser
    }

    /// The defaults of a job on the model named `name` (`nil`: the default model): its entry's
    /// own `defaults:` over the config's, or `nil` when it has none.
    public var modelDefaultsLookup: ModelDefaultsLookup {
        let own = modelDefaults, defaultModel = defaultModel
        return { name in (name ?? defaultModel).flatMap { own[$0] } }
    }

    /// Reads the scheduler config of a configured model (`nil`: the default model), once per
    /// model for the parser it is given to.
    public var schedulerConfigLookup: SchedulerConfigLookup {
        let models = models, defaultModel = defaultModel, cache = ModelFactCache<SchedulerConfig>()
        return { name in
            let (key, model) = try ServiceConfig.configuredModel(name, models: models, defaultModel: defaultModel)
            return try cache.value(key) { try model.schedulerConfig() }
        }
    }

    /// Whether a configured model (`nil`: the default model) has a `tiny_vae`.
    public var tinyVAELookup: TinyVAELookup {
        let models = models, defaultModel = defaultModel
        return { name in (name ?? defaultModel).flatMap { models[$0]?.tinyVAE } != nil }
    }

    /// Reads the native size of a configured model (`nil`: the default model) from its folder
    /// or its single file's header, once per model for the parser it is given to.
    public var nativeSizeLookup: NativeSizeLookup {
        let models = models, defaultModel = defaultModel, cache = ModelFactCache<NativeImageSize>()
        return { name in
            let (key, model) = try ServiceConfig.configuredModel(name, models: models, defaultModel: defaultModel)
            return try cache.value(key) { try NativeImageSize(model: model) }
        }
    }
}
