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
        let parser: JobFileParser
        if let config {
            parser = JobFileParser(limits: config.limits, defaults: config.defaults,
                                   knownModels: model == nil ? Set(config.models.keys) : nil, nativeSize: nativeSize,
                                   loraDirectory: config.loraDirectory, schedulerConfig: schedulerConfig,
                                   tinyVAE: model == nil ? config.tinyVAELookup : nil, promptTokenizer: tokenizers?.lookup,
                                   modelDefaults: modelDefaults(config))
        } else {
            parser = JobFileParser(nativeSize: nativeSize, schedulerConfig: schedulerConfig, promptTokenizer: tokenizers?.lookup)
        }
        var jobs: [JobRecord] = []
        var folders = Set<String>()
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
            let specs: [JobSpec]
            do {
                specs = try parser.parse(bytes: bytes, file: file)
            } catch {
                Log.error("\(error)")
                return SysExits.dataError
            }
            let stem = url.deletingPathExtension().lastPathComponent
            for (k, parsed) in specs.enumerated() {
                let spec = parsed.resolvingSeed()
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
            }
        }
        let box = Outbox(root: outbox)
        do {
            try AtomicFile.makeDirectory(outbox)
            for job in jobs { try clearOldOutput(box.folder(job)) }
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
            let report = runner.run(job) {
                if let model { return model }
                guard let configured = config?.models[job.model] else { throw RunError("model \(job.model) is not configured") }
                return configured
            }
            if report.resultPending {
                Log.error("\(job.id): its result.json could not be written")
                failures += 1
                continue
            }
            switch report.outcome {
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
            || (name.hasPrefix("image-") && name.hasSuffix(".png")) {
            try fm.removeItem(at: folder.appendingPathComponent(name))
        }
    }
}
