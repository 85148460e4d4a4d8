import ControlProtocol
import Foundation
import Jobs
import Pipeline
#if canImport(Glibc)
import Glibc
#endif

/// `result.json` of a job folder: written last, so its presence marks the job finished.
///
/// Every parameter that made the images (``JobParameters``: prompt, negative prompt, model,
/// size, steps, sampler, schedule, guidance, seed, count, rng, snapshots, LoRAs) sits at the
/// top level of the file next to the fields below; fields are only ever added.
public struct JobResult: Codable, Equatable, Sendable {
    /// One LoRA as applied: its name in `lora_dir`, the file read and the weight.
    public typealias LoRA = JobParameters.LoRA
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
    /// What made the images; encoded at the top level of the file, not as an object.
    public var parameters: JobParameters
    public var images: [Image]
    public var submitted: String
    public var started: String?
    public var finished: String
    /// Wall time of the last attempt; for a `--oneshot --shard` job, of all its tasks' attempts.
    public var seconds: Double?
    public var attempts: Int
    public var error: String?
    /// How many `--oneshot --shard` tasks the images were split over; absent otherwise.
    public var shards: Int?

    /// Model name as configured.
    public var model: String { parameters.model }
    /// The prompt as written.
    public var prompt: String { parameters.prompt }
    /// Image size in pixels as run: the job's, the config default's or the model's native size.
    /// Optional only so result files written before it was recorded still read.
    public var width: Int? { parameters.width }
    public var height: Int? { parameters.height }
    /// Seed of the first image.
    public var seed: UInt64? { parameters.seed }
    /// The job's LoRAs (`loras` field, then prompt tags); absent when it has none.
    public var loras: [LoRA]? { parameters.loras }
    /// What the engine cut from or did not know of the prompts (`PromptReport.warnings`:
    /// truncated tokens, words not in the model's vocabulary); absent when there is nothing.
    public var warnings: [String]?
    /// How the model's layer weights were kept as the images were made (the model entry's
    /// `weights:`: `stored`, `f16` or `f32`, which can change an image's last bits); absent
    /// when no model was loaded (a job failed or cancelled before), when the worker process
    /// died, and in older files.
    public var weights: String?

    private enum CodingKeys: String, CodingKey {
        case id, name, status, source, document, owner, images, submitted, started, finished, seconds, attempts, error
        case warnings, shards, weights
    }

    init(id: String, name: String?, status: String, source: String, document: Int, owner: UInt32,
         parameters: JobParameters, images: [Image], submitted: String, started: String?, finished: String,
         seconds: Double?, attempts: Int, error: String?, warnings: [String]? = nil) {
        self.id = id
        self.name = name
        self.status = status
        self.source = source
        self.document = document
        self.owner = owner
        self.parameters = parameters
        self.images = images
        self.submitted = submitted
        self.started = started
        self.finished = finished
        self.seconds = seconds
        self.attempts = attempts
        self.error = error
        self.warnings = warnings
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(String.self, forKey: .id), name: try c.decodeIfPresent(String.self, forKey: .name),
                  status: try c.decode(String.self, forKey: .status), source: try c.decode(String.self, forKey: .source),
                  document: try c.decode(Int.self, forKey: .document), owner: try c.decode(UInt32.self, forKey: .owner),
                  parameters: try JobParameters(from: decoder), images: try c.decode([Image].self, forKey: .images),
                  submitted: try c.decode(String.self, forKey: .submitted),
                  started: try c.decodeIfPresent(String.self, forKey: .started),
                  finished: try c.decode(String.self, forKey: .finished),
                  seconds: try c.decodeIfPresent(Double.self, forKey: .seconds),
                  attempts: try c.decode(Int.self, forKey: .attempts), error: try c.decodeIfPresent(String.self, forKey: .error),
                  warnings: try c.decodeIfPresent([String].self, forKey: .warnings))
        shards = try c.decodeIfPresent(Int.self, forKey: .shards)
        weights = try c.decodeIfPresent(String.self, forKey: .weights)
    }

    /// The parameters' keys and this type's share one JSON object (their names differ).
    public func encode(to encoder: Encoder) throws {
        try parameters.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encodeIfPresent(name, forKey: .name)
        try c.encode(status, forKey: .status)
        try c.encode(source, forKey: .source)
        try c.encode(document, forKey: .document)
        try c.encode(owner, forKey: .owner)
        try c.encode(images, forKey: .images)
        try c.encode(submitted, forKey: .submitted)
        try c.encodeIfPresent(started, forKey: .started)
        try c.encode(finished, forKey: .finished)
        try c.encodeIfPresent(seconds, forKey: .seconds)
        try c.encode(attempts, forKey: .attempts)
        try c.encodeIfPresent(error, forKey: .error)
        try c.encodeIfPresent(warnings, forKey: .warnings)
        try c.encodeIfPresent(shards, forKey: .shards)
        try c.encodeIfPresent(weights, forKey: .weights)
    }
}

/// The outbox layout of docs/ARCHITECTURE.md ("Contracts"). Every file is written with `AtomicFile` (temp, fsync,
/// rename, fsync dir), so a reader never sees half a file:
/// ```
/// outbox/<folder>/job.yaml                          the job's document as submitted
/// outbox/<folder>/input.png|jpg                     img2img: the picture as read at intake
/// outbox/<folder>/mask.png|jpg                      inpainting: the mask as read at intake
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

    /// True when `image-NNN.png` of image `index` exists and reads as a PNG. Files are
    /// renamed into place complete, so this is "the image is done"; the read also refuses a
    /// file that something other than diffusiond put there.
    public func hasCompleteImage(_ job: JobRecord, _ index: Int) -> Bool {
        guard let data = FileManager.default.contents(atPath: imageURL(job, index).path) else { return false }
        return (try? PNGChunks.read([UInt8](data))) != nil
    }

    /// The copy of an img2img job's picture, taken at intake (`input.png` / `input.jpg`);
    /// `nil` for text-to-image.
    public func inputURL(_ job: JobRecord) -> URL? { inputURL(folder: job.folder, spec: job.spec) }

    /// The copy of an inpainting job's mask, taken at intake (`mask.png` / `mask.jpg`).
    public func maskURL(_ job: JobRecord) -> URL? { maskURL(folder: job.folder, spec: job.spec) }

    func inputURL(folder: String, spec: JobSpec) -> URL? {
        spec.initImage?.format.map { root.appendingPathComponent(folder).appendingPathComponent("input." + $0.fileExtension) }
    }

    func maskURL(folder: String, spec: JobSpec) -> URL? {
        spec.mask?.format.map { root.appendingPathComponent(folder).appendingPathComponent("mask." + $0.fileExtension) }
    }

    /// Keeps the bytes of a job's picture and mask, as read at intake, in its folder
    /// `folder`: the job runs on these copies (not on files that may change or vanish
    /// meanwhile), and the outbox shows them.
    public func storeInputs(folder: String, spec: JobSpec, picture: InputPicture?, mask: InputPicture?) throws {
        for (url, input) in [(inputURL(folder: folder, spec: spec), picture), (maskURL(folder: folder, spec: spec), mask)] {
            guard let url, let input else { continue }
            try AtomicFile.makeDirectory(root.appendingPathComponent(folder))
            try AtomicFile.write(input.bytes, to: url)
        }
    }

    /// Removes what ``storeInputs(folder:spec:picture:mask:)`` wrote for a file that was then
    /// rejected: the copies, and the folder when nothing else is in it.
    public func discardInputs(folder: String, spec: JobSpec) {
        for url in [inputURL(folder: folder, spec: spec), maskURL(folder: folder, spec: spec)].compactMap({ $0 }) {
            unlink(url.path)
        }
        rmdir(root.appendingPathComponent(folder).path)
    }

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
    /// with the engine's prompt `warnings`, if any, and the `weights` mode its model ran in.
    public func writeResult(_ job: JobRecord, images: [JobResult.Image], seconds: Double?, warnings: [String] = [],
                            weights: String? = nil) throws {
        try prepare(job)
        var result = JobResult(id: job.id, name: job.spec.name, status: job.state.rawValue, source: job.sourceFile,
                               document: job.spec.documentIndex, owner: job.owner,
                               parameters: job.spec.parameters(model: job.model), images: images,
                               submitted: Outbox.iso(job.submitted), started: job.started.map(Outbox.iso),
                               finished: Outbox.iso(job.finished ?? Date().timeIntervalSince1970),
                               seconds: seconds, attempts: job.attempts, error: job.error,
                               warnings: warnings.isEmpty ? nil : warnings)
        result.weights = weights
        try write(result, for: job)
    }

    /// Writes `result` as `job`'s `result.json` (temp, fsync, rename).
    public func write(_ result: JobResult, for job: JobRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(Array(try encoder.encode(result)) + [0x0A], to: resultURL(job))
    }

    /// The status recorded in `job`'s `result.json`, if the file exists and reads.
    public func recordedResult(_ job: JobRecord) -> (JobState, String?)? {
        guard let result = result(job), let state = JobState(rawValue: result.status) else { return nil }
        return (state, result.error)
    }

    /// `job`'s `result.json`, if the file exists and reads.
    public func result(_ job: JobRecord) -> JobResult? {
        guard let data = FileManager.default.contents(atPath: resultURL(job).path) else { return nil }
        return try? JSONDecoder().decode(JobResult.self, from: data)
    }

    /// Moves an old `result.json` aside (`result-previous.json`) when a job is retried.
    public func retireResult(_ job: JobRecord) {
        let old = resultURL(job), aside = folder(job).appendingPathComponent("result-previous.json")
        if rename(old.path, aside.path) == 0 { try? AtomicFile.syncDirectory(folder(job).path) }
    }

    /// Puts an unacceptable file at `rejected/<name>` with `<name>.error` (one line) beside it.
    /// `<name>` is `originalName` (escaped, cut to ``FileNames/rejectedBytes``), or with `.1`,
    /// `.2` … added when that name or its `.error` is taken: nothing already in `rejected/`
    /// is ever replaced (a file named `x.yaml.error` and a later `x.yaml` both keep theirs).
    /// The `.error` is written first: if the daemon dies in between, the claimed file is
    /// rejected again at start under the same name and its `.error` rewritten. Returns the name used.
    @discardableResult
    public func reject(claimed: URL, originalName: String, reason: String) throws -> String {
        try AtomicFile.makeDirectory(rejected)
        let base = FileNames.shortened(PrintableText.escaped(originalName, keepLayout: false), toBytes: FileNames.rejectedBytes)
        var name = base
        var n = 1
        while exists(name) || isRejectedFile(name + ".error") {
            name = "\(base).\(n)"
            n += 1
        }
        try AtomicFile.write(SourceError.oneLine(reason) + "\n", to: rejected.appendingPathComponent(name + ".error"))
        // Only this daemon writes in rejected/, and it just checked the name is free.
        guard rename(claimed.path, rejected.appendingPathComponent(name).path) == 0 else {
            throw FileError("move to rejected/", claimed.path)
        }
        try AtomicFile.syncDirectory(rejected.path)
        return name
    }

    /// Whether `name` in `rejected/` is a file rejected earlier (it has its own `.error`
    /// beside it), not the orphan `.error` of a rejection a crash cut short (written first,
    /// its file never moved): that one is rewritten, so a rejection repeated after a crash
    /// keeps the file's name.
    private func isRejectedFile(_ name: String) -> Bool {
        exists(name) && exists(name + ".error")
    }

    /// Whether anything (a dangling link included) has `name` in `rejected/`.
    private func exists(_ name: String) -> Bool {
        var st = stat()
        return lstat(rejected.appendingPathComponent(name).path, &st) == 0
    }

    /// The files in `rejected/`, newest first: one per `.error` file, with its line as the
    /// reason and its modification time as the time of the rejection.
    public func rejections() -> [RejectionInfo] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: rejected.path)) ?? []
        return names.compactMap { name -> RejectionInfo? in
            // Dot names are AtomicFile temporaries.
            guard name.hasSuffix(".error"), !name.hasPrefix(".") else { return nil }
            let errorURL = rejected.appendingPathComponent(name)
            let file = String(name.dropLast(".error".count))
            // A `.error` without its file is a rejected file that happens to end in `.error`,
            // or the orphan of a rejection a crash cut short: neither is a rejection.
            var st = stat()
            guard lstat(rejected.appendingPathComponent(file).path, &st) == 0,
                  let data = FileManager.default.contents(atPath: errorURL.path), lstat(errorURL.path, &st) == 0 else { return nil }
            let time = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
            return RejectionInfo(file: file, path: rejected.appendingPathComponent(file).path,
                                 reason: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines),
                                 time: Date(timeIntervalSince1970: time))
        }.sorted { ($0.time, $0.file) > ($1.time, $1.file) }
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
