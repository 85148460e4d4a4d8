import Foundation
import Jobs
import Models
import Pipeline
#if canImport(Glibc)
import Glibc
#endif

/// Makes an engine for a configured model (a diffusers folder or a single file) using `threads` cores.
public typealias GeneratorFactory = (_ model: ModelReference, _ threads: Int) throws -> ImageGenerating

/// The real engine.
public let pipelineFactory: GeneratorFactory = { try $0.makePipeline(threads: $1) }

/// Keeps the last model loaded, so consecutive jobs on one model skip the load.
final class ModelCache {
    private let factory: GeneratorFactory
    private(set) var loadedName: String?
    private var loadedModel: ModelReference?
    private var loadedThreads = 0
    private var generator: ImageGenerating?

    init(factory: @escaping GeneratorFactory) { self.factory = factory }

    func generator(name: String, model: ModelReference, threads: Int) throws -> ImageGenerating {
        if let generator, loadedModel == model, loadedThreads == threads { return generator }
        generator = nil
        loadedName = nil
        Log.info("loading model \(name) from \(model.path.path)")
        let made = try factory(model, threads)
        generator = made
        loadedName = name
        loadedModel = model
        loadedThreads = threads
        return made
    }
}

/// How one run of a job ended.
enum RunOutcome: Equatable, Codable {
    case done
    case failed(String)
    case cancelled
    /// Stopped by shutdown before finishing; no result written, to be resumed.
    case interrupted
}

/// Why the step callback asks the engine to stop.
enum StopReason { case cancelled, shutdown }

/// What a run of a job came to, for the caller to record. Codable: the worker process
/// sends it to the daemon (`WorkerMessages.swift`).
struct RunReport: Codable {
    var outcome: RunOutcome
    /// The job with its final state and error set (unchanged when interrupted).
    var job: JobRecord
    /// What `result.json` lists.
    var images: [JobResult.Image] = []
    var seconds: Double = 0
    var warnings: [String] = []
    /// The loaded model's `weights` mode (`JobResult.weights`); nil when none was loaded.
    var weights: String?
    /// The job's `result.json` could not be written during the run (a full disk): the
    /// caller writes it (``writeResult(to:)``) before journaling the outcome. False once
    /// written, or when there is nothing to write (interrupted).
    var resultPending = false

    /// Writes the job's `result.json` from this report.
    func writeResult(to outbox: Outbox) throws {
        try outbox.writeResult(job, images: images, seconds: seconds, warnings: warnings, weights: weights)
    }
}

/// Runs one job through the engine into its outbox folder. Images already present from an
/// interrupted attempt are kept (they are complete: written atomically) and not made again.
struct JobRunner {
    let outbox: Outbox
    let models: ModelCache
    let threads: Int
    /// Polled after every step.
    let shouldStop: () -> StopReason?
    let onProgress: (JobProgress) -> Void

    /// Runs `job`; on `.done`, `.failed` and `.cancelled` the job's `result.json` has been
    /// written (with `job.state` set accordingly) before returning, or, when it could not be,
    /// `resultPending` is set. A file of the job that cannot be written (an image on a full
    /// disk) fails the job with that reason; only a shutdown interrupts it.
    func run(_ job: JobRecord, model resolveModel: () throws -> ModelReference) -> RunReport {
        var job = job
        let start = Date()
        var images: [JobResult.Image] = []
        var warnings: [String] = []
        var weights: WeightPrecision?
        var outcome = RunOutcome.done
        do {
            let engine = try load(job, model: resolveModel)
            warnings = engine.warnings
            weights = engine.weights
            let indices = Array(0..<job.spec.imageCount)
            if let kept = keptWeightsWarning(job, indices: indices, weights: engine.weights) { warnings.append(kept) }
            outcome = try makeImages(job, indices: indices, generator: engine.generator,
                                     weights: engine.weights) { image, _ in
                images.append(image)
            }
            if outcome == .done, let grid = job.spec.grid { try writeGrid(job, grid) }
        } catch {
            outcome = .failed("\(error)")
        }
        switch outcome {
        case .interrupted:
            return RunReport(outcome: outcome, job: job)
        case .done: job.state = .done; job.error = nil
        case .cancelled: job.state = .cancelled; job.error = "cancelled while running"
        case .failed(let message): job.state = .failed; job.error = message
        }
        job.finished = Date().timeIntervalSince1970
        var report = RunReport(outcome: outcome, job: job, images: images,
                               seconds: Date().timeIntervalSince(start), warnings: warnings, weights: weights?.rawValue)
        do {
            try report.writeResult(to: outbox)
        } catch {
            // The outcome stands; the caller writes result.json once it can, before journaling.
            Log.error("job \(job.id): cannot write result.json yet: \(error)")
            report.resultPending = true
        }
        return report
    }

    /// Prepares `job`'s folder and loads its model: the engine, the prompt's warnings
    /// (truncated tokens, unknown words), logged once per job since every image has the same
    /// prompts, and how the model keeps its weights (the entry's `weights:`).
    func load(_ job: JobRecord, model resolveModel: () throws -> ModelReference)
        throws -> (generator: ImageGenerating, warnings: [String], weights: WeightPrecision) {
        try outbox.prepare(job)
        let model = try resolveModel()
        let generator: ImageGenerating
        do {
            generator = try models.generator(name: job.model, model: model, threads: threads)
        } catch {
            throw RunError("cannot load model \(job.model) from \(model.path.path): \(error)")
        }
        let warnings = try generator.promptReport(job.spec.request(image: 0)).warnings
        for warning in warnings { Log.warning("job \(job.id): \(warning)") }
        return (generator, warnings, model.weights)
    }

    /// Makes images `indices` of `job`, in order, skipping those already complete in the
    /// outbox; `onImage` gets each one (`made`: generated now, else found) once it is on disk.
    /// `weights` is the model's weights mode, recorded in the PNG metadata when not `stored`.
    /// Returns `.done`, or `.cancelled`/`.interrupted` when `shouldStop` stopped it; throws
    /// when the engine or the outbox fails.
    func makeImages(_ job: JobRecord, indices: [Int], generator: ImageGenerating, weights: WeightPrecision,
                    onImage: (_ image: JobResult.Image, _ made: Bool) throws -> Void) throws -> RunOutcome {
        let stepClock = Date().timeIntervalSince1970
        // count images, or a grid's cells (image 1 of each; grid.png is written after the last).
        let plan = job.spec.imagePlan
        let picture = indices.isEmpty ? nil : try initImage(job)
        let mask = indices.isEmpty ? nil : try inpaintMask(job)
        for index in indices {
            let (spec, planned) = plan[index]
            var request = planned.spec.request(image: planned.index)
            request.initImage = picture
            request.mask = mask
            let url = outbox.imageURL(job, index)
            if outbox.hasCompleteImage(job, index) {
                try onImage(.init(file: url.lastPathComponent, seed: request.seed, seconds: nil), false)
                continue
            }
            let t0 = Date()
            let image: RGBImage
            do {
                image = try generator.generate(request, snapshotEvery: job.spec.snapshots) { event in
                    // The preview first, so the progress report can name its file (watch).
                    var written: String?
                    if let preview = event.preview {
                        let stepURL = outbox.stepURL(job, image: index, step: event.step)
                        do {
                            try AtomicFile.makeDirectory(stepURL.deletingLastPathComponent())
                            try AtomicFile.write(try PNGCodec.encode(preview), to: stepURL)
                            written = stepURL.path
                        } catch {
                            Log.warning("job \(job.id): cannot write step snapshot: \(error)")
                        }
                    }
                    onProgress(JobProgress(id: job.id, image: index, images: plan.count, step: event.step,
                                           steps: event.totalSteps, started: stepClock, preview: written))
                    return shouldStop() == nil ? .proceed : .cancel
                }
            } catch is GenerationCancelled {
                return shouldStop() == .shutdown ? .interrupted : .cancelled
            }
            let size = request.hires?.targetSize(width: request.width, height: request.height) ?? (width: request.width, height: request.height)
            guard image.width == size.width, image.height == size.height else {
                throw RunError("engine returned \(image.width)x\(image.height) for \(size.width)x\(size.height)")
            }
            var loraHashes: [String: String] = [:]
            for lora in request.loras { loraHashes[lora.name] = generator.loraHash(lora) }
            let parameters = A1111Parameters.text(for: request, model: job.model, prompt: spec.recordedPrompt,
                                                  modelHash: generator.modelHash, loraHashes: loraHashes,
                                                  maskBlur: spec.mask == nil ? nil : spec.maskBlur ?? 0,
                                                  weights: weights == .stored ? nil : weights.rawValue)
            do {
                try AtomicFile.write(try PNGCodec.encode(image, text: [("parameters", parameters)]), to: url)
            } catch let error as FileError {
                throw RunError("cannot write \(job.folder)/\(url.lastPathComponent): \(String(cString: strerror(error.code)))")
            }
            Log.info("job \(job.id): wrote \(job.folder)/\(url.lastPathComponent) (seed \(request.seed))")
            try onImage(.init(file: url.lastPathComponent, seed: request.seed, seconds: Date().timeIntervalSince(t0)), true)
        }
        return .done
    }
}

extension JobRunner {
    /// A warning for the images of `indices` already complete in the outbox (kept from an
    /// earlier attempt) whose PNG parameters record another weights mode than `weights`, the
    /// one this attempt loaded (the model entry's `weights:` changed between attempts), since
    /// `result.json`'s `weights` names only the latter; nil when there are none. An image whose
    /// parameters cannot be read is not named.
    func keptWeightsWarning(_ job: JobRecord, indices: [Int], weights: WeightPrecision) -> String? {
        var files: [String: [String]] = [:]
        for index in indices {
            // What `Outbox.hasCompleteImage` checks (a file whose chunks all read), read once.
            let url = outbox.imageURL(job, index)
            guard let bytes = FileManager.default.contents(atPath: url.path),
                  let chunks = try? PNGChunks.read([UInt8](bytes)),
                  let parameters = chunks.lazy.compactMap(\.textEntry).first(where: { $0.keyword == "parameters" })?.text
            else { continue }
            let recorded = A1111Parameters.recordedWeights(parameters)
            if recorded != weights.rawValue { files[recorded, default: []].append(url.lastPathComponent) }
        }
        guard !files.isEmpty else { return nil }
        let kept = files.sorted { $0.key < $1.key }.map { "\($0.value.joined(separator: ", ")) (\($0.key))" }
        return "kept from an earlier attempt with other weights: \(kept.joined(separator: "; ")); "
            + "the images made now, and result.json's \"weights\", use \(weights.rawValue)"
    }

    /// An img2img job's picture: its copy from the intake, decoded and brought to the job's
    /// size by its `resize` rule; `nil` for text-to-image.
    func initImage(_ job: JobRecord) throws -> RGBImage? {
        guard let source = job.spec.initImage else { return nil }
        guard let url = outbox.inputURL(job), let format = source.format,
              let data = FileManager.default.contents(atPath: url.path) else {
            throw RunError("the copy of init image \(source.path) taken at intake is missing from \(job.folder)/")
        }
        let decoded = try format.decode([UInt8](data))
        return decoded.resized(width: job.spec.width, height: job.spec.height, mode: job.spec.resize ?? .crop)
    }

    /// An inpainting job's mask: its copy from the intake, decoded, brought to the job's size
    /// by the same `resize` rule, as luma (Pillow's "L"), blurred by `mask_blur`; `nil` without one.
    func inpaintMask(_ job: JobRecord) throws -> [UInt8]? {
        guard let source = job.spec.mask else { return nil }
        guard let url = outbox.maskURL(job), let format = source.format,
              let data = FileManager.default.contents(atPath: url.path) else {
            throw RunError("the copy of mask \(source.path) taken at intake is missing from \(job.folder)/")
        }
        let decoded = try format.decode([UInt8](data))
        let sized = decoded.resized(width: job.spec.width, height: job.spec.height, mode: job.spec.resize ?? .crop)
        return MaskBlur.blurred(sized.luma, width: sized.width, height: sized.height, sigma: job.spec.maskBlur ?? 0)
    }
}

extension JobRunner {
    /// `grid.png` of a grid job: its cells' images (read back, so kept images of an interrupted
    /// attempt count) laid out and labelled by `GridImage`.
    func writeGrid(_ job: JobRecord, _ grid: JobGrid) throws {
        var cells: [RGBImage] = []
        for index in grid.cells.indices {
            let url = outbox.imageURL(job, index)
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw RunError("grid cell \(url.lastPathComponent) is missing")
            }
            cells.append(try PNGCodec.decode([UInt8](data)))
        }
        let image = GridImage.compose(cells, columns: grid.columns, columnLabels: grid.columnLabels, rowLabels: grid.rowLabels)
        try AtomicFile.write(try PNGCodec.encode(image), to: outbox.folder(job).appendingPathComponent("grid.png"))
        Log.info("job \(job.id): wrote \(job.folder)/grid.png (\(grid.columns)×\(grid.cells.count / max(1, grid.columns)) cells)")
    }
}

/// A run failure with a readable message.
struct RunError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
