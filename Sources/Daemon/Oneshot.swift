import ControlProtocol
import Foundation
import Jobs
import Pipeline
#if canImport(Glibc)
import Glibc
#endif

/// `diffusiond --oneshot JOB.yaml… --outbox DIR [--model DIR]`: runs the jobs of the given
/// files without inbox, queue or socket, into the outbox layout, and exits.
/// Folder of each job: its `name`, else the file's stem (`-2`, `-3` … for later documents).
struct Oneshot {
    let files: [String]
    let outbox: URL
    let model: ModelReference?
    /// What jobs on `model` record as their model: its configured name, else the path's stem.
    var modelLabel: String?
    let config: ServiceConfig?
    let threads: Int?
    let factory: GeneratorFactory

    /// The model's own `defaults:`: by each job's model from the config, or for every job those
    /// of the configured model `--model NAME` names.
    private func modelDefaults(_ config: ServiceConfig) -> ModelDefaultsLookup? {
        guard model != nil else { return config.modelDefaultsLookup }
        guard let own = modelLabel.flatMap({ config.modelDefaults[$0] }) else { return nil }
        return { _ in own }
    }

    func run() -> Int32 {
        // A size that neither a job nor the config's defaults set is the native size of the
        // model the job runs on: `--model DIR` for every job, else the config's model.
        let nativeSize: NativeSizeLookup?
        let schedulerConfig: SchedulerConfigLookup?
        if let model {
            (nativeSize, schedulerConfig) = JobFileParser.lookups(for: model)
        } else {
            nativeSize = config?.nativeSizeLookup
            schedulerConfig = config?.schedulerConfigLookup
        }
        let tokenizers = model.map(PromptTokenizers.init(model:))
            ?? config.map { PromptTokenizers(models: $0.models, defaultModel: $0.defaultModel) }
        var parser: JobFileParser
        if let config {
            parser = JobFileParser(limits: config.limits, defaults: config.defaults,
                                   knownModels: model == nil ? Set(config.models.keys) : nil, nativeSize: nativeSize,
                                   loraDirectory: config.loraDirectory, schedulerConfig: schedulerConfig,
                                   tinyVAE: model == nil ? config.tinyVAELookup : nil, promptTokenizer: tokenizers?.lookup,
                                   modelDefaults: modelDefaults(config))
            parser.wildcards = config.wildcardsDirectory.map(WildcardLibrary.init(directory:))
        } else {
            parser = JobFileParser(nativeSize: nativeSize, schedulerConfig: schedulerConfig, promptTokenizer: tokenizers?.lookup)
        }
        var jobs: [JobRecord] = []
        var folders = Set<String>()
        var pictures: [String: ResolvedJob] = [:]
        for file in files {
            let url = URL(fileURLWithPath: file)
            let bytes: [UInt8]
            switch Intake.read(url, name: file, maxSize: parser.limits.maxFileSize) {
            case .refused(let why):
                Log.error("\(file): \(why)")
                return FileManager.default.fileExists(atPath: file) ? SysExits.dataError : SysExits.noInput
            case .bytes(let b, _):
                bytes = b
            }
            var specs: [ResolvedJob] = []
            do {
                var parser = parser
                // Relative init_image paths are read from the job file's folder.
                parser.inputBase = url.deletingLastPathComponent().standardizedFileURL
                let access = InputFileAccess(owner: getuid(), maxBytes: parser.limits.maxInputBytes,
                                             maxPixels: parser.limits.maxInputPixels)
                parser.inputAccess = access
                // --oneshot keeps the pictures until the outbox folders are named (a user's own run).
                _ = try JobInputs.resolve(try parser.parse(bytes: bytes, file: file), file: file, access: access,
                                          maxJobs: parser.limits.maxJobsPerFile) { _, job in specs.append(job) }
            } catch {
                Log.error("\(error)")
                return SysExits.dataError
            }
            let stem = url.deletingPathExtension().lastPathComponent
            for (k, item) in specs.enumerated() {
                let parsed = item.spec
                let spec: JobSpec
                do {
                    spec = try parsed.resolvingSeed().expandingTemplates(wildcards: parser.wildcards)
                } catch {
                    Log.error("\(file): \(error)")
                    return SysExits.dataError
                }
                var folder = spec.name ?? (specs.count > 1 ? "\(stem)-\(k + 1)" : stem)
                if !JobFileParser.isValidName(folder) { folder = "job-\(jobs.count + 1)" }
                var unique = folder, n = 2
                while folders.contains(unique) { unique = "\(folder)-\(n)"; n += 1 }
                folders.insert(unique)
                let modelName: String
                if let model {
                    modelName = spec.model ?? modelLabel ?? model.path.deletingPathExtension().lastPathComponent
                } else if let name = spec.model ?? config?.defaultModel {
                    modelName = name
                } else {
                    Log.error("\(file): no model; pass --model DIR|FILE.safetensors|NAME, or --config FILE with a default model")
                    return SysExits.usage
                }
                jobs.append(JobRecord(id: unique, number: jobs.count + 1, spec: spec, sourceFile: file, owner: getuid(),
                                      submitted: Date().timeIntervalSince1970, state: .running, attempts: 1,
                                      folder: unique, started: Date().timeIntervalSince1970, finished: nil,
                                      error: nil, model: modelName))
                pictures[unique] = item
            }
        }
        let box = Outbox(root: outbox)
        do {
            try AtomicFile.makeDirectory(outbox)
            for job in jobs {
                try clearOldOutput(box.folder(job))
                if let item = pictures[job.folder] {
                    try box.storeInputs(folder: job.folder, spec: job.spec, picture: item.picture, mask: item.mask)
                }
            }
        } catch {
            Log.error("cannot prepare the outbox: \(error)")
            return SysExits.cantCreate
        }
        let models = ModelCache(factory: factory)
        let threadCount = threads ?? config?.effectiveThreads ?? ProcessInfo.processInfo.activeProcessorCount
        var failures = 0
        for job in jobs {
            let runner = JobRunner(outbox: box, models: models, threads: threadCount,
                                   shouldStop: { Signals.stopRequested ? .shutdown : nil },
                                   onProgress: { p in Log.debug("\(p.id): image \(p.image + 1)/\(p.images) step \(p.step)/\(p.steps)") })
            Log.info("\(job.id): \(job.spec.count) image(s), \(job.spec.width)x\(job.spec.height), \(job.spec.steps) steps, seed \(job.spec.seed ?? 0)")
            let (outcome, _) = runner.run(job) {
                if let model { return model }
                guard let configured = config?.models[job.model] else { throw RunError("model \(job.model) is not configured") }
                return configured
            }
            switch outcome {
            case .done: Log.info("\(job.id): done → \(box.folder(job).path)")
            case .interrupted, .cancelled:
                Log.notice("\(job.id): interrupted")
                return SysExits.tempFail
            case .failed(let message):
                Log.error("\(job.id): failed: \(message)")
                failures += 1
            }
        }
        return failures == 0 ? SysExits.ok : SysExits.software
    }

    /// A re-run into the same folder starts clean: old images, previews and result go.
    private func clearOldOutput(_ folder: URL) throws {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: folder.path) else { return }
        for name in names where name == "result.json" || name == "steps" || name == "job.yaml"
            || name.hasPrefix("input.") || name.hasPrefix("mask.") || name == "grid.png" || (name.hasPrefix("image-") && name.hasSuffix(".png")) {
            try fm.removeItem(at: folder.appendingPathComponent(name))
        }
    }
}
