import ControlProtocol
import Foundation
import Pipeline
import Sampling

/// Reads job files (`man 5 diffusion-job`): one job per YAML document, a strict schema,
/// streamed from libyaml events. Every error is a one-line `SourceError` with file, line,
/// column and field.
public struct JobFileParser: Sendable {
    public var limits: JobLimits
    public var defaults: JobDefaults
    /// Model names a job may ask for; `nil` accepts any well-formed name (e.g. with `--model`).
    public var knownModels: Set<String>?
    /// Native size of a job's model, for `width`/`height` that neither the job nor `defaults`
    /// set; `nil`: such a job is an error.
    public var nativeSize: NativeSizeLookup?
    /// The config's `lora_dir`: LoRA names resolve to `<loraDirectory>/<name>.safetensors`;
    /// `nil`: a job that asks for a LoRA is an error.
    public var loraDirectory: URL?
    /// Scheduler config of a job's model, to check sampler, schedule and steps at intake;
    /// `nil`: they are checked when the job runs.
    public var schedulerConfig: SchedulerConfigLookup?
    /// Whether a job's model has a tiny VAE, for `decoder: tiny`; `nil`: no model has one.
    public var tinyVAE: TinyVAELookup?
    /// Tokenizer of a job's model, to refuse a `long_prompt: chunk` prompt over
    /// `LongPromptMode.maximumChunks` chunks at intake; `nil`: not checked here (the run fails).
    public var promptTokenizer: PromptTokenizerLookup?
    /// Defaults of the job's model when its config entry has its own `defaults:`; `nil` or a
    /// `nil` answer: `defaults`.
    public var modelDefaults: ModelDefaultsLookup?
    /// Folder that relative `init_image` / `init_images` paths are read from (`--oneshot`: the
    /// job file's folder); `nil` (the daemon, which cannot know where a job was written):
    /// such paths must be absolute.
    public var inputBase: URL?
    /// Reads `prompts_file` as the job file's owner may (set per file by the intake and
    /// `--oneshot`); `nil`: a job with `prompts_file` is an error.
    public var inputAccess: InputFileAccess?
    /// The config's `wildcards_dir`; `nil`: a prompt naming `__wildcard__` is an error.
    public var wildcards: WildcardLibrary?
    /// Family of a job's model, to refuse what SDXL does not run (img2img, LoRAs, …) at
    /// intake (`JobFamilyCheck.swift`); `nil`: refused when the job runs.
    public var modelFamily: ModelFamilyLookup?

    /// Field names of a job document, in the order the man page lists them.
    public static let fields = ["prompt", "negative_prompt", "model", "width", "height", "steps", "sampler",
                                "schedule", "guidance", "seed", "count", "priority", "snapshots", "rng", "decoder", "name", "loras",
                                "long_prompt", "guidance_cutoff", "init_image", "init_images", "strength", "resize", "prompts", "prompts_file", "mask", "mask_blur", "upscale", "upscale_strength", "grid", "cache", "eta", "restart"]

    public init(limits: JobLimits = JobLimits(), defaults: JobDefaults = JobDefaults(), knownModels: Set<String>? = nil,
                nativeSize: NativeSizeLookup? = nil, loraDirectory: URL? = nil, schedulerConfig: SchedulerConfigLookup? = nil,
                tinyVAE: TinyVAELookup? = nil, promptTokenizer: PromptTokenizerLookup? = nil,
                modelDefaults: ModelDefaultsLookup? = nil) {
        self.limits = limits
        self.defaults = defaults
        self.knownModels = knownModels
        self.nativeSize = nativeSize
        self.loraDirectory = loraDirectory
        self.schedulerConfig = schedulerConfig
        self.tinyVAE = tinyVAE
        self.promptTokenizer = promptTokenizer
        self.modelDefaults = modelDefaults
    }

    /// Parses every job of a file. `file` names it in errors (the inbox name).
    public func parse(bytes: [UInt8], file: String) throws -> [JobSpec] {
        let bytes = YAMLEventStream.removingByteOrderMark(bytes)
        guard bytes.count <= limits.maxFileSize else {
            throw SourceError(file: file, line: 0, column: 0,
                              message: "file is \(bytes.count) bytes, more than the limit of \(limits.maxFileSize)")
        }
        let stream = try YAMLEventStream(bytes: bytes, file: file,
                                         limits: YAMLSafetyLimits(maxDepth: 4, maxScalarBytes: limits.maxPromptBytes))
        var jobs: [JobSpec] = []
        var startLines: [Int] = []
        while true {
            let (event, mark) = try stream.next()
            switch event {
            case .streamEnd:
                guard !jobs.isEmpty else {
                    throw SourceError(file: file, line: 1, column: 1, message: "no job in file (it is empty or only comments)")
                }
                let texts = JobFileParser.documentTexts(bytes: bytes, startLines: startLines)
                for i in jobs.indices { jobs[i].sourceText = texts[jobs[i].documentIndex - 1] }
                return jobs
            case .documentStart:
                guard jobs.count < limits.maxJobsPerFile else {
                    throw SourceError(file: file, line: mark.line, column: mark.column,
                                      message: "more than \(limits.maxJobsPerFile) jobs in one file (limits.max_jobs_per_file)")
                }
                startLines.append(mark.line)
                jobs += try parseDocument(stream, file: file, index: startLines.count, budget: limits.maxJobsPerFile - jobs.count)
            default:
                throw SourceError(file: file, line: mark.line, column: mark.column, message: "unexpected YAML structure")
            }
        }
    }

    /// The jobs of one document: one, or one per prompt of `prompts` / `prompts_file`, at most
    /// `budget` (what is left of `max_jobs_per_file`).
    private func parseDocument(_ stream: YAMLEventStream, file: String, index: Int, budget: Int) throws -> [JobSpec] {
        let (root, rootMark) = try stream.next()
        func fail(_ m: SourceMark, _ message: String) -> SourceError {
            SourceError(file: file, line: m.line, column: m.column, message: message)
        }
        switch root {
        case .mappingStart: break
        case .scalar(let text, let plain) where ScalarDecoder.isNull(text, plain: plain):
            throw fail(rootMark, "document \(index) is empty; a job is a mapping of field: value lines")
        case .sequenceStart:
            throw fail(rootMark, "document \(index) is a list; a job is a mapping of field: value lines")
        default:
            throw fail(rootMark, "document \(index) is a single value; a job is a mapping of field: value lines")
        }
        var values: [String: (text: String, plain: Bool, mark: SourceMark)] = [:]
        var loras: [LoRAEntry] = []
        var promptList: [(text: String, mark: SourceMark)] = []
        var gridAxes: [GridAxisEntry] = []
        var restart: RestartSegment?
        while true {
            let (keyEvent, keyMark) = try stream.next()
            guard case .scalar(let key, _) = keyEvent else {
                if keyEvent == .mappingEnd { break }
                throw fail(keyMark, "a field name must be a plain word, not a list or mapping")
            }
            guard JobFileParser.fields.contains(key) else {
                throw SourceError(file: file, line: keyMark.line, column: keyMark.column, field: SourceError.oneLine(String(key.prefix(40))),
                                  message: "unknown field; valid fields: \(JobFileParser.fields.joined(separator: ", "))")
            }
            if let first = values[key] {
                throw SourceError(file: file, line: keyMark.line, column: keyMark.column, field: key,
                                  message: "duplicate field (first given on line \(first.mark.line))")
            }
            let (valueEvent, valueMark) = try stream.next()
            if key == "loras" {
                values[key] = ("", true, keyMark)
                loras = try parseLoRAList(stream, first: valueEvent, mark: valueMark, file: file)
                continue
            }
            if key == "grid" {
                values[key] = ("", true, keyMark)
                gridAxes = try parseGrid(stream, first: valueEvent, mark: valueMark, file: file)
                continue
            }
            if key == "restart" {
                let d = ScalarDecoder(file: file)
                guard valueEvent == .sequenceStart else {
                    throw d.error(key, valueMark, "expected a list [steps, times, sigma_min, sigma_max]")
                }
                values[key] = ("", true, valueMark)
                restart = try d.restart(try d.scalarList(stream, field: key), field: key, listMark: valueMark)
                continue
            }
            if key == "prompts" {
                values[key] = ("", true, keyMark)
                promptList = try parsePromptList(stream, first: valueEvent, mark: valueMark, file: file)
                continue
            }
            switch valueEvent {
            case .scalar(let text, let plain):
                values[key] = (text, plain, valueMark)
            case .mappingStart:
                throw SourceError(file: file, line: valueMark.line, column: valueMark.column, field: key,
                                  message: "expected a single value, found a mapping")
            default:
                throw SourceError(file: file, line: valueMark.line, column: valueMark.column, field: key,
                                  message: "expected a single value, found a list")
            }
        }
        let (end, endMark) = try stream.next()
        guard end == .documentEnd else { throw fail(endMark, "unexpected content after the job") }
        let given = ["prompt", "prompts", "prompts_file"].filter { values[$0] != nil }
        if given.count > 1, let second = values[given[1]] {
            throw SourceError(file: file, line: second.mark.line, column: second.mark.column, field: given[1],
                              message: "give one of prompt, prompts and prompts_file")
        }
        func tooMany(_ mark: SourceMark, _ field: String) -> SourceError {
            SourceError(file: file, line: mark.line, column: mark.column, field: field,
                        message: "the file would become more than \(limits.maxJobsPerFile) jobs (limits.max_jobs_per_file)")
        }
        if let gridValue = values["grid"] {
            return [try makeGrid(gridAxes, values: values, loras: loras, restart: restart, file: file, index: index, mappingMark: rootMark,
                                 gridMark: gridValue.mark)]
        }
        if let listed = values["prompts"] {
            guard !promptList.isEmpty else {
                throw SourceError(file: file, line: listed.mark.line, column: listed.mark.column, field: "prompts", message: "is empty")
            }
            guard promptList.count <= budget else { throw tooMany(listed.mark, "prompts") }
            return try promptList.map { item in
                var one = values
                one["prompt"] = (item.text, false, item.mark)
                return try makeSpec(one, loras: loras, restart: restart, file: file, index: index, mappingMark: rootMark)
            }
        }
        if let listed = values["prompts_file"] {
            let d = ScalarDecoder(file: file)
            let written = try d.string(listed.text, plain: listed.plain, field: "prompts_file", mark: listed.mark, maxBytes: 4096)
            let path = try inputPath(written, field: "prompts_file", mark: listed.mark, decoder: d)
            guard let access = inputAccess else {
                throw d.error("prompts_file", listed.mark, "cannot be read here (no job owner to read it for)")
            }
            let lines: [(line: Int, text: String)]
            do {
                let bytes = try access.read(path)
                guard let text = String(validating: bytes, as: UTF8.self) else {
                    throw InputRefusal(path: path, reason: "is not UTF-8 text")
                }
                lines = PromptLines.lines(text)
            } catch {
                throw d.error("prompts_file", listed.mark, SourceError.oneLine("\(error)"))
            }
            guard !lines.isEmpty else { throw d.error("prompts_file", listed.mark, "\(path): has no prompt (only blank or # lines)") }
            guard lines.count <= budget else { throw tooMany(listed.mark, "prompts_file") }
            // The same rule as for text in the job file (YAMLEventStream): no control characters.
            for line in lines {
                if let (position, scalar) = PrintableText.firstControl(in: line.text) {
                    throw d.error("prompts_file", listed.mark, "\(path) line \(line.line): control character "
                                  + "\(PrintableText.describe(scalar)) at character \(position); remove it")
                }
            }
            return try lines.map { line in
                var one = values
                one["prompt"] = (line.text, false, listed.mark)
                do {
                    return try makeSpec(one, loras: loras, restart: restart, file: file, index: index, mappingMark: rootMark)
                } catch let error as SourceError {
                    var located = error
                    located.message = "\(path) line \(line.line): \(error.message)"
                    throw located
                }
            }
        }
        return [try makeSpec(values, loras: loras, restart: restart, file: file, index: index, mappingMark: rootMark)]
    }

    /// One axis of `grid:` as written.
    struct GridAxisEntry {
        var axis: String
        var field: String
        var fieldMark: SourceMark
        var values: [(text: String, plain: Bool, mark: SourceMark)]
    }

    /// `grid: {x: {FIELD: [V, …]}, y: {FIELD: [V, …]}}` — one or both axes, one field each.
    private func parseGrid(_ stream: YAMLEventStream, first: YAMLEvent, mark: SourceMark, file: String) throws -> [GridAxisEntry] {
        let d = ScalarDecoder(file: file)
        let shape = "expected {x: {FIELD: [VALUE, …]}, y: {FIELD: [VALUE, …]}}"
        guard first == .mappingStart else { throw d.error("grid", mark, shape) }
        var axes: [GridAxisEntry] = []
        while true {
            let (k, kMark) = try stream.next()
            if k == .mappingEnd { break }
            guard case .scalar(let axis, _) = k, axis == "x" || axis == "y" else { throw d.error("grid", kMark, "unknown axis; valid: x, y") }
            guard !axes.contains(where: { $0.axis == axis }) else { throw d.error("grid.\(axis)", kMark, "duplicate axis") }
            guard try stream.next().0 == .mappingStart else { throw d.error("grid.\(axis)", kMark, shape) }
            let (f, fMark) = try stream.next()
            guard case .scalar(let field, _) = f else { throw d.error("grid.\(axis)", fMark, shape) }
            guard JobGrid.fields.contains(field) else {
                throw d.error("grid.\(axis)", fMark, "\(SourceError.quote(field)) cannot be a grid axis; valid: \(JobGrid.fields.joined(separator: ", "))")
            }
            let (list, listMark) = try stream.next()
            guard list == .sequenceStart else { throw d.error("grid.\(axis).\(field)", listMark, "expected a list of values") }
            let values = try d.scalarList(stream, field: "grid.\(axis).\(field)")
            guard !values.isEmpty else { throw d.error("grid.\(axis).\(field)", listMark, "is empty") }
            guard try stream.next().0 == .mappingEnd else { throw d.error("grid.\(axis)", kMark, "one field per axis") }
            axes.append(GridAxisEntry(axis: axis, field: field, fieldMark: fMark, values: values))
        }
        guard !axes.isEmpty else { throw d.error("grid", mark, shape) }
        if axes.count == 2, axes[0].field == axes[1].field { throw d.error("grid.y", axes[1].fieldMark, "both axes vary \(axes[0].field)") }
        return axes
    }

    /// A grid job: every cell (y outer, x inner) made and checked like a job of its own with
    /// the axis values in place; the job is its first cell with the grid attached.
    private func makeGrid(_ axes: [GridAxisEntry], values: [String: (text: String, plain: Bool, mark: SourceMark)],
                          loras: [LoRAEntry], restart: RestartSegment?, file: String, index: Int, mappingMark: SourceMark,
                          gridMark: SourceMark) throws -> JobSpec {
        let d = ScalarDecoder(file: file)
        for other in ["prompts", "prompts_file", "init_images", "count"] where values[other] != nil {
            throw d.error("grid", gridMark, "a grid job cannot have \(other) (each cell is one image)")
        }
        for axis in axes where values[axis.field] != nil {
            throw d.error("grid.\(axis.axis)", axis.fieldMark, "\(axis.field) is both a field of the job and a grid axis")
        }
        let x = axes.first { $0.axis == "x" }, y = axes.first { $0.axis == "y" }
        let cellCount = (x?.values.count ?? 1) * (y?.values.count ?? 1)
        guard cellCount <= limits.maxCount else {
            throw d.error("grid", gridMark, "\(cellCount) cells, more than max_count (\(limits.maxCount))")
        }
        var cells: [JobSpec] = []
        for row in 0..<(y?.values.count ?? 1) {
            for column in 0..<(x?.values.count ?? 1) {
                var one = values
                one["grid"] = nil
                if let y { one[y.field] = y.values[row] }
                if let x { one[x.field] = x.values[column] }
                cells.append(try makeSpec(one, loras: loras, restart: restart, file: file, index: index, mappingMark: mappingMark))
            }
        }
        var job = cells[0]
        job.grid = JobGrid(x: x.map { JobGrid.Axis(field: $0.field, values: $0.values.map(\.text)) },
                           y: y.map { JobGrid.Axis(field: $0.field, values: $0.values.map(\.text)) }, cells: cells)
        return job
    }

    /// `prompts:` — a list of prompts (plain or quoted strings).
    private func parsePromptList(_ stream: YAMLEventStream, first: YAMLEvent, mark: SourceMark,
                                 file: String) throws -> [(text: String, mark: SourceMark)] {
        let d = ScalarDecoder(file: file)
        guard first == .sequenceStart else { throw d.error("prompts", mark, "expected a list of prompts, one per '- ' line") }
        var prompts: [(text: String, mark: SourceMark)] = []
        while true {
            let (item, itemMark) = try stream.next()
            switch item {
            case .sequenceEnd:
                return prompts
            case .scalar(let text, _):
                prompts.append((text, itemMark))
            default:
                throw d.error("prompts", itemMark, "expected a list of prompts, each a single value")
            }
        }
    }

    /// One entry of the `loras` list as written.
    struct LoRAEntry {
        var name: String
        var nameMark: SourceMark
        var weight: Float
    }

    /// `loras:` — a list whose items are `{name: N, weight: W}` mappings (weight default 1)
    /// or plain names; empty or null means none.
    private func parseLoRAList(_ stream: YAMLEventStream, first: YAMLEvent, mark: SourceMark, file: String) throws -> [LoRAEntry] {
        let d = ScalarDecoder(file: file)
        let shape = "expected a list of LoRAs, each {name: NAME, weight: NUMBER} or a plain name"
        switch first {
        case .scalar(let text, let plain) where ScalarDecoder.isNull(text, plain: plain): return []
        case .sequenceStart: break
        default: throw d.error("loras", mark, shape)
        }
        var entries: [LoRAEntry] = []
        while true {
            let (item, itemMark) = try stream.next()
            switch item {
            case .sequenceEnd:
                return entries
            case .scalar(let text, let plain):
                let name = try d.string(text, plain: plain, field: "loras.name", mark: itemMark, maxBytes: 256)
                entries.append(LoRAEntry(name: name, nameMark: itemMark, weight: 1))
            case .mappingStart:
                var name: (String, SourceMark)?
                var weight: Float = 1
                var seen = Set<String>()
                while true {
                    let (k, kMark) = try stream.next()
                    if k == .mappingEnd { break }
                    guard case .scalar(let key, _) = k, key == "name" || key == "weight" else {
                        throw d.error("loras", kMark, "unknown key in a LoRA entry; valid: name, weight")
                    }
                    guard seen.insert(key).inserted else { throw d.error("loras.\(key)", kMark, "duplicate key") }
                    let (v, vMark) = try stream.next()
                    guard case .scalar(let text, let plain) = v else {
                        throw d.error("loras.\(key)", vMark, "expected a single value")
                    }
                    if key == "name" {
                        name = (try d.string(text, plain: plain, field: "loras.name", mark: vMark, maxBytes: 256), vMark)
                    } else {
                        let limit = Double(LoRAWeightLimit.maximum)
                        weight = Float(try d.number(text, plain: plain, field: "loras.weight", mark: vMark, range: -limit...limit))
                    }
                }
                guard let (n, nMark) = name else { throw d.error("loras.name", itemMark, "required key is missing") }
                entries.append(LoRAEntry(name: n, nameMark: nMark, weight: weight))
            default:
                throw d.error("loras", itemMark, shape)
            }
        }
    }

    /// `<loraDirectory>/<name>.safetensors`, checked: a safe name (no path), a configured
    /// folder, a file that exists and is not a pickle.
    private func resolveLoRA(_ name: String, field: String, mark: SourceMark, decoder d: ScalarDecoder) throws -> URL {
        guard JobFileParser.isValidLoRAName(name) else {
            throw d.error(field, mark, "\(SourceError.quote(name)) is not a LoRA name; use 1 to 128 letters, digits, '.', '_', '-', not starting with '.', without '..' (a name in lora_dir, never a path)")
        }
        let lower = name.lowercased()
        if [".ckpt", ".pt", ".pth", ".bin"].contains(where: { lower.hasSuffix($0) }) {
            throw d.error(field, mark, "\(SourceError.quote(name)): only .safetensors LoRAs are read (.ckpt/.pt files are Python pickles, which can run code when loaded); convert it and name it without extension")
        }
        let stem = lower.hasSuffix(".safetensors") ? String(name.dropLast(".safetensors".count)) : name
        guard let directory = loraDirectory else {
            throw d.error(field, mark, "LoRA \(SourceError.quote(stem)): no lora_dir is configured, so jobs cannot use LoRAs (set lora_dir in the service config)")
        }
        let fm = FileManager.default
        let url = directory.appendingPathComponent(stem + ".safetensors")
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue { return url }
        for pickle in ["ckpt", "pt"] where fm.fileExists(atPath: directory.appendingPathComponent(stem + "." + pickle).path) {
            throw d.error(field, mark, "LoRA \(SourceError.quote(stem)) is a .\(pickle) file; only .safetensors LoRAs are read (pickles can run code when loaded): convert it")
        }
        throw d.error(field, mark, "no LoRA \(SourceError.quote(stem)) in lora_dir \(directory.path) (looked for \(stem).safetensors)")
    }

    /// `[A-Za-z0-9._-]{1,128}`, not starting with `.`, without `..`.
    public static func isValidLoRAName(_ name: String) -> Bool {
        guard (1...128).contains(name.utf8.count), !name.hasPrefix("."), !name.contains("..") else { return false }
        return name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
        }
    }

    private func makeSpec(_ values: [String: (text: String, plain: Bool, mark: SourceMark)], loras: [LoRAEntry],
                          restart: RestartSegment?, file: String, index: Int, mappingMark: SourceMark) throws -> JobSpec {
        let d = ScalarDecoder(file: file)
        guard let promptValue = values["prompt"] else {
            throw SourceError(file: file, line: mappingMark.line, column: mappingMark.column, field: "prompt",
                              message: "required field is missing")
        }
        let prompt = try d.string(promptValue.text, plain: promptValue.plain, field: "prompt", mark: promptValue.mark,
                                  maxBytes: limits.maxPromptBytes)
        guard !prompt.allSatisfy(\.isWhitespace) else { throw d.error("prompt", promptValue.mark, "is empty") }
        try checkWildcards(prompt, field: "prompt", mark: promptValue.mark, decoder: d)
        // The job's model's own defaults, if its config entry has some (its name as written:
        // an invalid one is refused below and then no default matters).
        let defaults = modelDefaults?(values["model"]?.text) ?? self.defaults
        // width and height stay 0 until `resolveSize` fills in what the job leaves out.
        var spec = JobSpec(prompt: prompt, negativePrompt: "", model: nil, width: 0, height: 0,
                           steps: defaults.steps, sampler: defaults.sampler, schedule: defaults.schedule,
                           guidance: defaults.guidance, seed: nil, count: 1, priority: defaults.priority,
                           snapshots: defaults.snapshots, rng: defaults.rng, name: nil, documentIndex: index, sourceText: "")
        spec.samplerOptions = SamplerOptions(eta: defaults.eta, restart: defaults.restart)
        // Visit in a fixed order so the first error reported does not depend on hashing.
        for field in JobFileParser.fields where field != "prompt" {
            guard let (text, plain, mark) = values[field] else { continue }
            switch field {
            case "negative_prompt":
                // `negative_prompt:` with no value is no negative prompt (diffusers' None); a quoted
                // "" is a given empty one (SDXL encodes it, see JobSpec.negativePromptGiven).
                spec.negativePromptGiven = !(plain && text.isEmpty)
                spec.negativePrompt = plain && text.isEmpty ? ""
                    : try d.string(text, plain: plain, field: field, mark: mark, maxBytes: limits.maxPromptBytes)
                try checkWildcards(spec.negativePrompt, field: field, mark: mark, decoder: d)
            case "model":
                let name = try d.string(text, plain: plain, field: field, mark: mark, maxBytes: 64)
                guard JobFileParser.isValidName(name) else {
                    throw d.error(field, mark, "\(SourceError.quote(name)) is not a model name (letters, digits, '.', '_', '-')")
                }
                if let known = knownModels, !known.contains(name) {
                    throw d.error(field, mark, "unknown model \(SourceError.quote(name)); configured: \(known.sorted().joined(separator: ", "))")
                }
                spec.model = name
            case "width", "height":
                let maximum = field == "width" ? limits.maxWidth : limits.maxHeight
                let value = try d.integer(text, plain: plain, field: field, mark: mark, range: 8...maximum)
                guard value % 8 == 0 else { throw d.error(field, mark, "\(value) is not a multiple of 8") }
                if field == "width" { spec.width = value } else { spec.height = value }
            case "steps":
                spec.steps = try d.integer(text, plain: plain, field: field, mark: mark, range: 1...limits.maxSteps)
            case "sampler":
                spec.sampler = try d.choice(text, plain: plain, field: field, mark: mark,
                                            parse: SamplerKind.init(rawValue:), validNames: SamplerKind.validNames)
            case "schedule":
                spec.schedule = try d.choice(text, plain: plain, field: field, mark: mark,
                                             parse: ScheduleKind.init(rawValue:), validNames: ScheduleKind.validNames)
            case "rng":
                spec.rng = try d.choice(text, plain: plain, field: field, mark: mark,
                                        parse: RNGKind.init(rawValue:), validNames: RNGKind.validNames)
            case "guidance":
                spec.guidance = Float(try d.number(text, plain: plain, field: field, mark: mark, range: 0...50))
            case "seed":
                spec.seed = try d.unsigned64(text, plain: plain, field: field, mark: mark)
            case "count":
                spec.count = try d.integer(text, plain: plain, field: field, mark: mark, range: 1...limits.maxCount)
            case "priority": spec.priority = try d.priority(text, plain: plain, field: field, mark: mark)
            case "decoder":
                let choice = try d.choice(text, plain: plain, field: field, mark: mark,
                                          parse: DecoderChoice.init(rawValue:), validNames: DecoderChoice.validNames)
                if choice == .tiny, tinyVAE?(spec.model) != true {
                    let model = spec.model.map { "model \(SourceError.quote($0))" } ?? "the default model"
                    throw d.error(field, mark, "tiny needs the model's tiny autoencoder, and \(model) has none "
                                  + "(add tiny_vae: DIR to its models entry in the config)")
                }
                spec.decoder = choice
            case "guidance_cutoff":
                // Above 0 (0 would drop guidance altogether: say guidance: 1 instead); 1 = all guided.
                let cutoff = try d.number(text, plain: plain, field: field, mark: mark, range: 0...1)
                guard cutoff > 0 else { throw d.error(field, mark, "must be above 0 (for no guidance at all, set guidance: 1)") }
                spec.guidanceCutoff = cutoff
            case "eta":
                // Which samplers take it, and up to what, is SamplerOptions' to say (checkSampler).
                spec.samplerOptions.eta = try d.number(text, plain: plain, field: field, mark: mark, range: SamplerOptions.etaBounds)
            case "restart":
                spec.samplerOptions.restart = restart
            case "cache":
                // DeepCache's interval: 1 runs the whole UNet every time (no caching), N > 1 every Nth.
                let interval = try d.integer(text, plain: plain, field: field, mark: mark, range: 1...limits.maxSteps)
                spec.cache = interval
            case "snapshots":
                spec.snapshots = try d.integer(text, plain: plain, field: field, mark: mark, range: 0...limits.maxSteps)
            case "name":
                let name = try d.string(text, plain: plain, field: field, mark: mark, maxBytes: 1024)
                guard JobFileParser.isValidName(name) else {
                    throw d.error(field, mark, "\(SourceError.quote(name)) is not allowed; use 1 to 64 letters, digits, '.', '_', '-' (no path separators)")
                }
                spec.name = name
            case "long_prompt":
                spec.longPrompt = try d.choice(text, plain: plain, field: field, mark: mark,
                                               parse: LongPromptMode.init(rawValue:), validNames: LongPromptMode.validNames)
            case "init_image", "init_images":
                if field == "init_images", values["init_image"] != nil {
                    throw d.error(field, mark, "give init_image (one picture) or init_images (a folder), not both")
                }
                let written = try d.string(text, plain: plain, field: field, mark: mark, maxBytes: 4096)
                spec.initImage = InitImageSource(path: try inputPath(written, field: field, mark: mark, decoder: d),
                                                 isFolder: field == "init_images", line: mark.line, column: mark.column)
            case "strength":
                spec.strength = try d.number(text, plain: plain, field: field, mark: mark, range: 0...1)
            case "mask":
                let written = try d.string(text, plain: plain, field: field, mark: mark, maxBytes: 4096)
                spec.mask = InitImageSource(path: try inputPath(written, field: field, mark: mark, decoder: d),
                                            isFolder: false, line: mark.line, column: mark.column)
            case "mask_blur":
                spec.maskBlur = try d.number(text, plain: plain, field: field, mark: mark, range: 0...64)
            case "upscale":
                let scale = try d.number(text, plain: plain, field: field, mark: mark, range: 1...4)
                guard scale > 1 else { throw d.error(field, mark, "must be above 1 (leave it out for one pass)") }
                spec.upscale = scale
            case "upscale_strength":
                spec.upscaleStrength = try d.number(text, plain: plain, field: field, mark: mark, range: 0...1)
            case "resize":
                spec.resize = try d.choice(text, plain: plain, field: field, mark: mark,
                                           parse: ResizeMode.init(rawValue:), validNames: ResizeMode.validNames)
            default:
                break
            }
        }
        // LoRAs: the field's, then the prompt's <lora:name:weight> tags (AUTOMATIC1111 reads
        // tags in the positive prompt only; the negative prompt's text is left alone).
        var seen: [String: SourceMark] = [:]
        func add(_ name: String, _ weight: Float, field: String, mark: SourceMark) throws {
            let url = try resolveLoRA(name, field: field, mark: mark, decoder: d)
            let stem = url.deletingPathExtension().lastPathComponent
            if let first = seen[stem] {
                throw d.error(field, mark, "LoRA \(SourceError.quote(stem)) is given twice (first on line \(first.line)); give it once with the weight wanted")
            }
            seen[stem] = mark
            spec.loras.append(LoRASelection(name: stem, file: url, weight: weight))
        }
        for entry in loras { try add(entry.name, entry.weight, field: "loras.name", mark: entry.nameMark) }
        let tags: [PromptLoRATags.Tag]
        do {
            tags = try PromptLoRATags.tags(in: prompt)
        } catch let error as PromptTagError {
            throw d.error("prompt", promptValue.mark, error.message)
        }
        for tag in tags { try add(tag.name, tag.weight ?? 1, field: "prompt", mark: promptValue.mark) }
        if let seed = spec.seed, UInt64.max - seed < UInt64(spec.count - 1), let m = values["seed"]?.mark {
            throw d.error("seed", m, "seed + count - 1 exceeds \(UInt64.max)")
        }
        // What the model's family cannot run at all, before the checks of how it would run.
        try checkFamily(spec, marks: values.mapValues(\.mark), loraMark: loras.first?.nameMark ?? (tags.isEmpty ? nil : promptValue.mark),
                        decoder: d)
        try checkImg2Img(spec, marks: values.mapValues(\.mark), decoder: d)
        try resolveSize(&spec, given: values.mapValues(\.mark), defaults: defaults, decoder: d, mappingMark: mappingMark)
        try checkHires(spec, marks: values.mapValues(\.mark), decoder: d)
        try checkSamplerOptions(&spec, given: values.mapValues(\.mark), defaults: defaults, decoder: d, mappingMark: mappingMark)
        try checkSampler(spec, given: values.mapValues(\.mark), decoder: d, mappingMark: mappingMark)
        try checkLongPrompt(spec, marks: values.mapValues(\.mark), decoder: d)
        return spec
    }

    /// Every `__name__` of `text` names a wildcard file with options in `wildcards_dir`.
    private func checkWildcards(_ text: String, field: String, mark: SourceMark, decoder d: ScalarDecoder) throws {
        for name in Set(PromptTemplate.wildcardNames(text)).sorted() {
            guard let wildcards else {
                throw d.error(field, mark, "__\(name)__ is a wildcard, and no wildcards_dir is configured (set wildcards_dir in the service config)")
            }
            do {
                _ = try wildcards.options(name)
            } catch {
                throw d.error(field, mark, "\(error)")
            }
        }
    }

    /// Hires fix: text-to-image only, a second pass within the size limits that leaves a step.
    private func checkHires(_ spec: JobSpec, marks: [String: SourceMark], decoder d: ScalarDecoder) throws {
        guard let hires = spec.hires, let mark = marks["upscale"] else {
            if let mark = marks["upscale_strength"] { throw d.error("upscale_strength", mark, "applies to the hires fix only; add upscale") }
            return
        }
        if spec.initImage != nil {
            throw d.error("upscale", mark, "the hires fix is for text-to-image; leave out init_image/init_images or upscale")
        }
        let size = hires.targetSize(width: spec.width, height: spec.height)
        guard size.width <= limits.maxWidth, size.height <= limits.maxHeight else {
            throw d.error("upscale", mark, "\(spec.width)x\(spec.height) upscaled is \(size.width)x\(size.height), over the limits of \(limits.maxWidth)x\(limits.maxHeight)")
        }
        do {
            _ = try TextToImagePipeline.img2imgStartStep(steps: spec.steps, strength: hires.strength)
        } catch {
            let field = marks["upscale_strength"] != nil ? "upscale_strength" : "upscale"
            throw d.error(field, marks[field] ?? mark, "upscale_strength \(hires.strength) with \(spec.steps) steps leaves no step for the second pass")
        }
    }

    /// An `init_image` path made absolute: as written when absolute, else under `inputBase`.
    private func inputPath(_ written: String, field: String, mark: SourceMark, decoder d: ScalarDecoder) throws -> String {
        guard !written.isEmpty, !written.contains("\0") else { throw d.error(field, mark, "is empty") }
        if written.hasPrefix("/") { return written }
        guard let base = inputBase else {
            throw d.error(field, mark, "\(SourceError.quote(written)) is relative; the daemon needs an absolute path (it cannot know where the job was written)")
        }
        return base.appendingPathComponent(written).path + (written.hasSuffix("/") ? "/" : "")
    }

    /// `strength` and `resize` belong to img2img; the strength must leave a step to run
    /// (`StableDiffusionImg2ImgPipeline.get_timesteps`).
    private func checkImg2Img(_ spec: JobSpec, marks: [String: SourceMark], decoder d: ScalarDecoder) throws {
        if spec.mask == nil, let mark = marks["mask_blur"] {
            throw d.error("mask_blur", mark, "applies to inpainting only; add mask")
        }
        guard spec.initImage != nil else {
            for field in ["strength", "resize", "mask"] {
                if let mark = marks[field] { throw d.error(field, mark, "applies to img2img and inpainting only; add init_image or init_images") }
            }
            return
        }
        let strength = spec.effectiveStrength
        do {
            _ = try TextToImagePipeline.img2imgStartStep(steps: spec.steps, strength: strength)
        } catch {
            let field = marks["strength"] != nil ? "strength" : "steps"
            let mark = marks[field] ?? marks["init_image"] ?? marks["init_images"] ?? SourceMark(line: 1, column: 1)
            throw d.error(field, mark, "strength \(strength) with \(spec.steps) steps leaves no step to run; int(steps × strength) must be at least 1")
        }
    }

    /// `[A-Za-z0-9._-]{1,64}`, and not `.` or `..`.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count), name != ".", name != ".." else { return false }
        return name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
        }
    }

    /// The text of each document: from its start line (the first from line 1) to the line before the next.
    static func documentTexts(bytes: [UInt8], startLines: [Int]) -> [String] {
        guard startLines.count > 1 else { return [String(decoding: bytes, as: UTF8.self)] }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        var texts: [String] = []
        for (k, start) in startLines.enumerated() {
            let from = k == 0 ? 0 : max(0, start - 1)
            if k + 1 == startLines.count {
                // The last document runs to the end of the file, its final newline included.
                texts.append(lines[min(from, lines.count)...].joined(separator: "\n"))
            } else {
                let to = min(lines.count, max(from, startLines[k + 1] - 1))
                texts.append(lines[from..<to].joined(separator: "\n") + "\n")
            }
        }
        return texts
    }
}

/// Whether the model a job runs on (`nil`: the configured default) has a tiny VAE
/// (`tiny_vae:` of its `models:` entry), for `decoder: tiny` at intake.
public typealias TinyVAELookup = @Sendable (_ model: String?) -> Bool
