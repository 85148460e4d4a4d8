import ControlProtocol
import Foundation
import Jobs
#if canImport(Glibc)
import Glibc
#endif

/// `result.json` of a job folder: written last, so its presence marks the job finished.
public struct JobResult: Codable, Equatable, Sendable {
    /// One LoRA as applied: its name in `lora_dir`, the file read and the weight.
    public struct LoRA: Codable, Equatable, Sendable {
        public var name: String
        public var file: String
        public var weight: Float
        public init(name: String, file: String, weight: Float) {
            self.name = name
            self.file = file
            self.weight = weight
        }
    }
    public struct Image: Codable, Equatable, Sendable {
        public var file: String
        public var seed: UInt64
        /// Generation time; `nil` for an image kept from an earlier, interrupted attempt.
        public var seconds: Double?
    }
    public var id: String
    public var name: String?
    /// `done`, `failed` or `cancelled`.
    public var status: String
    public var source: String
    public var document: Int
    public var owner: UInt32
    public var model: String
    public var prompt: String
    /// Image size in pixels as run: the job's, the config default's or the model's native size.
    /// Optional only so result files written before it was recorded still read.
    public var width: Int?
    public var height: Int?
    public var seed: UInt64?
    public var images: [Image]
    /// The job's LoRAs (`loras` field, then prompt tags); absent when it has none.
    public var loras: [LoRA]?
    public var submitted: String
    public var started: String?
    public var finished: String
    /// Wall time of the last attempt.
    public var seconds: Double?
    public var attempts: Int
    public var error: String?
    /// What the engine cut from or did not know of the prompts (`PromptReport.warnings`:
    /// truncated tokens, words not in the model's vocabulary); absent when there is nothing.
    public var warnings: [String]?
}

/// The outbox layout of docs/ARCHITECTURE.md ("Contracts"). Every file is written with `AtomicFile` (temp, fsync,
/// rename, fsync dir), so a reader never sees half a file:
/// ```
/// outbox/<folder>/job.yaml                          the job's document as submitted
/// outbox/<folder>/image-001.png                     with an AUTOMATIC1111 `parameters` chunk
/// outbox/<folder>/steps/image-001-step-005.png      previews every `snapshots` steps
/// outbox/<folder>/result.json                       written last: status, seeds, timings, error
/// outbox/rejected/<file>, <file>.error              files that could not be accepted
/// ```
public struct Outbox: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }

    public var rejected: URL { root.appendingPathComponent("rejected") }

    public func folder(_ job: JobRecord) -> URL { root.appendingPathComponent(job.folder) }

    public func imageURL(_ job: JobRecord, _ index: Int) -> URL {
        folder(job).appendingPathComponent(String(format: "image-%03d.png", index + 1))
    }

    public func stepURL(_ job: JobRecord, image index: Int, step: Int) -> URL {
        folder(job).appendingPathComponent("steps")
            .appendingPathComponent(String(format: "image-%03d-step-%03d.png", index + 1, step))
    }

    public func resultURL(_ job: JobRecord) -> URL { folder(job).appendingPathComponent("result.json") }

    /// Creates the job folder and `steps/`, and writes `job.yaml` (once).
    public func prepare(_ job: JobRecord) throws {
        try AtomicFile.makeDirectory(folder(job))
        if job.spec.snapshots > 0 { try AtomicFile.makeDirectory(folder(job).appendingPathComponent("steps")) }
        let yaml = folder(job).appendingPathComponent("job.yaml")
        if !FileManager.default.fileExists(atPath: yaml.path) {
            try AtomicFile.write(job.spec.sourceText, to: yaml)
        }
    }

    /// Writes `result.json` for `job` in its current state (the folder is created if needed),
    /// with the engine's prompt `warnings`, if any.
    public func writeResult(_ job: JobRecord, images: [JobResult.Image], seconds: Double?, warnings: [String] = []) throws {
        try prepare(job)
        let result = JobResult(id: job.id, name: job.spec.name, status: job.state.rawValue, source: job.sourceFile,
                               document: job.spec.documentIndex, owner: job.owner, model: job.model,
                               prompt: job.spec.prompt, width: job.spec.width, height: job.spec.height,
                               seed: job.spec.seed, images: images,
                               loras: job.spec.loras.isEmpty ? nil
                                   : job.spec.loras.map { .init(name: $0.name, file: $0.file.path, weight: $0.weight) },
                               submitted: Outbox.iso(job.submitted), started: job.started.map(Outbox.iso),
                               finished: Outbox.iso(job.finished ?? Date().timeIntervalSince1970),
                               seconds: seconds, attempts: job.attempts, error: job.error,
                               warnings: warnings.isEmpty ? nil : warnings)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(Array(try encoder.encode(result)) + [0x0A], to: resultURL(job))
    }

    /// The status recorded in `job`'s `result.json`, if the file exists and reads.
    public func recordedResult(_ job: JobRecord) -> (JobState, String?)? {
        guard let data = FileManager.default.contents(atPath: resultURL(job).path),
              let result = try? JSONDecoder().decode(JobResult.self, from: data),
              let state = JobState(rawValue: result.status) else { return nil }
        return (state, result.error)
    }

    /// Moves an old `result.json` aside (`result-previous.json`) when a job is retried.
    public func retireResult(_ job: JobRecord) {
        let old = resultURL(job), aside = folder(job).appendingPathComponent("result-previous.json")
        if rename(old.path, aside.path) == 0 { try? AtomicFile.syncDirectory(folder(job).path) }
    }

    /// Puts an unacceptable file at `rejected/<name>` with `<name>.error` (one line) beside it.
    /// The `.error` is written first: if the daemon dies in between, the claimed file is
    /// rejected again at start and the `.error` rewritten. Returns the name used.
    @discardableResult
    public func reject(claimed: URL, originalName: String, reason: String) throws -> String {
        try AtomicFile.makeDirectory(rejected)
        var name = originalName
        var n = 1
        while FileManager.default.fileExists(atPath: rejected.appendingPathComponent(name).path)
                || (try? FileManager.default.destinationOfSymbolicLink(atPath: rejected.appendingPathComponent(name).path)) != nil {
            name = "\(originalName).\(n)"
            n += 1
        }
        try AtomicFile.write(SourceError.oneLine(reason) + "\n", to: rejected.appendingPathComponent(name + ".error"))
        guard rename(claimed.path, rejected.appendingPathComponent(name).path) == 0 else {
            throw FileError("move to rejected/", claimed.path)
        }
        try AtomicFile.syncDirectory(rejected.path)
        return name
    }

    /// Removes temporary files (`AtomicFile`) a killed daemon left in `folder` and its `steps/`.
    public static func removeTemporaryFiles(in folder: URL) {
        for dir in [folder, folder.appendingPathComponent("steps")] {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { continue }
            for name in names where AtomicFile.isTemporaryName(name) {
                unlink(dir.appendingPathComponent(name).path)
            }
        }
    }

    static func iso(_ t: Double) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: t))
    }
}
