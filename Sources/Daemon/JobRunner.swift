import Foundation
import Jobs
import Pipeline

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
enum RunOutcome: Equatable {
    case done
    case failed(String)
    case cancelled
    /// Stopped by shutdown before finishing; no result written, to be resumed.
    case interrupted
}

/// Why the step callback asks the engine to stop.
enum StopReason { case cancelled, shutdown }

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
    /// written (with `job.state` set accordingly) before returning.
    func run(_ job: JobRecord, model resolveModel: () throws -> ModelReference) -> (RunOutcome, JobRecord) {
        var job = job
        let start = Date()
        var images: [JobResult.Image] = []
        var warnings: [String] = []
        var outcome = RunOutcome.done
        do {
            try outbox.prepare(job)
            let model = try resolveModel()
            let generator: ImageGenerating
            do {
                generator = try models.generator(name: job.model, model: model, threads: threads)
            } catch {
                throw RunError("cannot load model \(job.model) from \(model.path.path): \(error)")
            }
            // Truncated tokens and unknown words, once per job (every image has the same prompts).
            warnings = try generator.promptReport(job.spec.request(image: 0)).warnings
            for warning in warnings { Log.warning("job \(job.id): \(warning)") }
            let picture = try initImage(job)
            let mask = try inpaintMask(job)
            let stepClock = Date().timeIntervalSince1970
            // count images, or a grid's cells (image 1 of each, grid.png after the last).
            let plan = job.spec.imagePlan
            imageLoop: for (index, (spec, planned)) in plan.enumerated() {
                var request = planned.spec.request(image: planned.index)
                request.initImage = picture
                request.mask = mask
                let url = outbox.imageURL(job, index)
                if let data = FileManager.default.contents(atPath: url.path), (try? PNGChunks.read([UInt8](data))) != nil {
                    images.append(.init(file: url.lastPathComponent, seed: request.seed, seconds: nil))
                    continue
                }
                let t0 = Date()
                let image: RGBImage
                do {
                    image = try generator.generate(request, snapshotEvery: job.spec.snapshots) { event in
                        onProgress(JobProgress(id: job.id, image: index, images: plan.count, step: event.step,
                                               steps: event.totalSteps, started: stepClock))
                        if let preview = event.preview {
                            do {
                                try AtomicFile.makeDirectory(outbox.stepURL(job, image: index, step: 0).deletingLastPathComponent())
                                try AtomicFile.write(try PNGCodec.encode(preview),
                                                     to: outbox.stepURL(job, image: index, step: event.step))
                            } catch {
                                Log.warning("job \(job.id): cannot write step snapshot: \(error)")
                            }
                        }
                        return shouldStop() == nil ? .proceed : .cancel
                    }
                } catch is GenerationCancelled {
                    outcome = shouldStop() == .shutdown ? .interrupted : .cancelled
                    break imageLoop
                }
                let size = request.hires?.targetSize(width: request.width, height: request.height) ?? (width: request.width, height: request.height)
                guard image.width == size.width, image.height == size.height else {
                    throw RunError("engine returned \(image.width)x\(image.height) for \(size.width)x\(size.height)")
                }
                var loraHashes: [String: String] = [:]
                for lora in request.loras { loraHashes[lora.name] = generator.loraHash(lora) }
                let parameters = A1111Parameters.text(for: request, model: job.model, prompt: spec.recordedPrompt,
                                                      modelHash: generator.modelHash, loraHashes: loraHashes,
                                                      maskBlur: spec.mask == nil ? nil : spec.maskBlur ?? 0)
                try AtomicFile.write(try PNGCodec.encode(image, text: [("parameters", parameters)]), to: url)
                images.append(.init(file: url.lastPathComponent, seed: request.seed, seconds: Date().timeIntervalSince(t0)))
                Log.info("job \(job.id): wrote \(job.folder)/\(url.lastPathComponent) (seed \(request.seed))")
            }
            if outcome == .done, let grid = job.spec.grid { try writeGrid(job, grid) }
        } catch {
            outcome = .failed("\(error)")
        }
        switch outcome {
        case .interrupted:
            return (outcome, job)
        case .done: job.state = .done; job.error = nil
        case .cancelled: job.state = .cancelled; job.error = "cancelled while running"
        case .failed(let message): job.state = .failed; job.error = message
        }
        job.finished = Date().timeIntervalSince1970
        do {
            try outbox.writeResult(job, images: images, seconds: Date().timeIntervalSince(start), warnings: warnings)
        } catch {
            // Without result.json the job is not finished: leave it to be run again.
            Log.error("job \(job.id): cannot write result.json: \(error)")
            return (.interrupted, job)
        }
        return (outcome, job)
    }
}

extension JobRunner {
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
