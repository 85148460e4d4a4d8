import ControlProtocol
import Foundation
import Jobs
import Pipeline
#if canImport(Glibc)
import Glibc
#endif

/// The jobs of `--oneshot` job files, parsed as the daemon's intake would (limits, defaults,
/// model defaults, native sizes, sampler and prompt checks), in command-line order. A run and
/// `--status` read the files the same way, so they agree on every job, folder and image.
///
/// Folder of each job: its `name`, else the file's stem (`-2`, `-3` … for later documents).
/// A job without `seed` gets one derived from its folder and text
/// (``JobSpec/resolvingSeed(derivedFrom:)``), so all tasks of a batch and every rerun agree.
struct OneshotIntake {
    let files: [String]
    let model: ModelReference?
    /// What jobs on `model` record as their model: its configured name, else the path's stem.
    var modelLabel: String?
    let config: ServiceConfig?

    /// A reason already logged, and the exit status it calls for.
    struct Failure: Error {
        let status: Int32
    }

    /// The model's own `defaults:`: by each job's model from the config, or for every job those
    /// of the configured model `--model NAME` names.
    private func modelDefaults(_ config: ServiceConfig) -> ModelDefaultsLookup? {
        guard model != nil else { return config.modelDefaultsLookup }
        guard let own = modelLabel.flatMap({ config.modelDefaults[$0] }) else { return nil }
        return { _ in own }
    }

    private func parser() -> JobFileParser {
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
        guard let config else {
            var parser = JobFileParser(nativeSize: nativeSize, schedulerConfig: schedulerConfig, promptTokenizer: tokenizers?.lookup)
            parser.modelFamily = model.map(JobFileParser.familyLookup(for:))
            return parser
        }
        var parser = JobFileParser(limits: config.limits, defaults: config.defaults,
                                   knownModels: model == nil ? Set(config.models.keys) : nil, nativeSize: nativeSize,
                                   loraDirectory: config.loraDirectory, schedulerConfig: schedulerConfig,
                                   tinyVAE: model == nil ? config.tinyVAELookup : nil, promptTokenizer: tokenizers?.lookup,
                                   modelDefaults: modelDefaults(config))
        parser.wildcards = config.wildcardsDirectory.map(WildcardLibrary.init(directory:))
        parser.modelFamily = model.map(JobFileParser.familyLookup(for:)) ?? config.modelFamilyLookup
        return parser
    }

    /// Every job of every file; the first bad file is logged and ends it (65, 66 or 64).
    func jobs() throws(Failure) -> [JobRecord] { try jobsWithInputs().map(\.job) }

    /// Every job of every file with the pictures it reads (img2img, inpainting), read as this
    /// user may read them; relative paths are taken from the job file's folder.
    func jobsWithInputs() throws(Failure) -> [(job: JobRecord, inputs: ResolvedJob)] {
        let parser = parser()
        var jobs: [(job: JobRecord, inputs: ResolvedJob)] = []
        var folders = Set<String>()
        let now = Date().timeIntervalSince1970
        for file in files {
            let url = URL(fileURLWithPath: file)
            let bytes: [UInt8]
            switch Intake.read(url, name: file, maxSize: parser.limits.maxFileSize) {
            case .refused(let why):
                Log.error("\(file): \(why)")
                throw Failure(status: FileManager.default.fileExists(atPath: file) ? SysExits.dataError : SysExits.noInput)
            case .bytes(let b, _):
                bytes = b
            }
            var specs: [ResolvedJob] = []
            do {
                var parser = parser
                parser.inputBase = url.deletingLastPathComponent().standardizedFileURL
                let access = InputFileAccess(owner: getuid(), maxBytes: parser.limits.maxInputBytes,
                                             maxPixels: parser.limits.maxInputPixels)
                parser.inputAccess = access
                // --oneshot keeps the pictures until the outbox folders are named (a user's own run).
                _ = try JobInputs.resolve(try parser.parse(bytes: bytes, file: file), file: file, access: access,
                                          maxJobs: parser.limits.maxJobsPerFile) { _, job in specs.append(job) }
            } catch {
                Log.error("\(error)")
                throw Failure(status: SysExits.dataError)
            }
            let stem = url.deletingPathExtension().lastPathComponent
            for (k, item) in specs.enumerated() {
                let parsed = item.spec
                var folder = parsed.name ?? (specs.count > 1 ? "\(stem)-\(k + 1)" : stem)
                if !JobFileParser.isValidName(folder) { folder = "job-\(jobs.count + 1)" }
                var unique = folder, n = 2
                while folders.contains(unique) { unique = "\(folder)-\(n)"; n += 1 }
                folders.insert(unique)
                let spec: JobSpec
                do {
                    spec = try parsed.resolvingSeed(derivedFrom: unique + "\n" + parsed.sourceText)
                        .expandingTemplates(wildcards: parser.wildcards)
                } catch {
                    Log.error("\(file): \(error)")
                    throw Failure(status: SysExits.dataError)
                }
                let modelName: String
                if let model {
                    modelName = spec.model ?? modelLabel ?? model.path.deletingPathExtension().lastPathComponent
                } else if let name = spec.model ?? config?.defaultModel {
                    modelName = name
                } else {
                    Log.error("\(file): no model; pass --model DIR|FILE.safetensors|NAME, or --config FILE with a default model")
                    throw Failure(status: SysExits.usage)
                }
                jobs.append((JobRecord(id: unique, number: jobs.count + 1, spec: spec, sourceFile: file, owner: getuid(),
                                       submitted: now, state: .running, attempts: 1, folder: unique, started: now,
                                       finished: nil, error: nil, model: modelName), item))
            }
        }
        return jobs
    }
}
