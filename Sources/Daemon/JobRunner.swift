import Foundation
import Jobs
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
    /// The job's `result.json` could not be written during the run (a full disk): the
    /// caller writes it (``writeResult(to:)``) before journaling the outcome. False once
    /// written, or when there is nothing to write (interrupted).
    var resultPending = false

    /// Writes the job's `result.json` from this report.
    func writeResult(to outbox: Outbox) throws {
        try outbox.writeResult(job, images: images, seconds: seconds, warnings: warnings)
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
            let stepClock = Date().timeIntervalSince1970
            imageLoop: for index in 0..<job.spec.count {
                let request = job.spec.request(image: index)
                let url = outbox.imageURL(job, index)
                if let data = FileManager.default.contents(atPath: url.path), (try? PNGChunks.read([UInt8](data))) != nil {
                    images.append(.init(file: url.lastPathComponent, seed: request.seed, seconds: nil))
                    continue
                }
                let t0 = Date()
                let image: RGBImage
                do {
                    image = try generator.generate(request, snapshotEvery: job.spec.snapshots) { event in
                        onProgress(JobProgress(id: job.id, image: index, images: job.spec.count, step: event.step,
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
                guard image.width == request.width, image.height == request.height else {
                    throw RunError("engine returned \(image.width)x\(image.height) for \(request.width)x\(request.height)")
                }
                var loraHashes: [String: String] = [:]
                for lora in request.loras { loraHashes[lora.name] = generator.loraHash(lora) }
                let parameters = A1111Parameters.text(for: request, model: job.model, prompt: job.spec.recordedPrompt,
                                                      modelHash: generator.modelHash, loraHashes: loraHashes)
                do {
                    try AtomicFile.write(try PNGCodec.encode(image, text: [("parameters", parameters)]), to: url)
                } catch let error as FileError {
                    throw RunError("cannot write \(job.folder)/\(url.lastPathComponent): \(String(cString: strerror(error.code)))")
                }
                images.append(.init(file: url.lastPathComponent, seed: request.seed, seconds: Date().timeIntervalSince(t0)))
                Log.info("job \(job.id): wrote \(job.folder)/\(url.lastPathComponent) (seed \(request.seed))")
            }
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
                               seconds: Date().timeIntervalSince(start), warnings: warnings)
        do {
            try report.writeResult(to: outbox)
        } catch {
            // The outcome stands; the caller writes result.json once it can, before journaling.
            Log.error("job \(job.id): cannot write result.json yet: \(error)")
            report.resultPending = true
        }
        return report
    }
}

/// A run failure with a readable message.
struct RunError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
