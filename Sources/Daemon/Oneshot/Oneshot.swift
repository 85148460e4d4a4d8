import ControlProtocol
import Foundation
import Jobs
import Pipeline
#if canImport(Glibc)
import Glibc
#endif

/// `diffusiond --oneshot JOB.yaml… --outbox DIR [--shard K/N|auto]`: runs the jobs of the
/// given files (or task K's share of their images, ``Shard``) without inbox, queue or socket,
/// into the outbox layout, and exits.
///
/// Resumable and safe to run many times, by many tasks at once, into one (shared, NFS)
/// outbox: an image already complete there is kept and not made again; a folder that holds
/// another job's results is refused, never cleared; each task writes only its own images and
/// its own record (`shards/K-of-N.json`), and every file is renamed into place complete. The
/// task that finds a job's images all there writes its merged `result.json` (``ShardMerge``).
struct Oneshot {
    let intake: OneshotIntake
    let outbox: URL
    let model: ModelReference?
    let config: ServiceConfig?
    let threads: Int?
    let factory: GeneratorFactory
    var shard = Shard.whole
    /// The scheduler's name for this task, recorded for `--status` (`slurm 1234_5`).
    var schedulerTask: String?

    func run() -> Int32 {
        let items: [(job: JobRecord, inputs: ResolvedJob)]
        do { items = try intake.jobsWithInputs() } catch { return error.status }
        let jobs = items.map(\.job)
        let box = Outbox(root: outbox)
        do {
            try AtomicFile.makeDirectory(outbox)
        } catch {
            Log.error("cannot prepare the outbox: \(error)")
            return SysExits.cantCreate
        }
        // Before making anything: every folder is empty or holds earlier work on the same job.
        let conflicts = jobs.compactMap { job in
            JobFolderState(job, outbox: box, readImages: false).conflict(with: job.spec.parameters(model: job.model))
        }
        for conflict in conflicts {
            Log.error("\(outbox.path)/\(conflict); nothing was changed: move that folder away or give another --outbox")
        }
        if !conflicts.isEmpty { return SysExits.cantCreate }
        // The pictures of img2img and inpainting jobs, as read now, kept in their folders: the
        // jobs run on these copies. The first task's copy is kept: a later task (or a rerun after
        // the picture changed on disk) must not swap the picture under tasks already making images.
        do {
            let missing = { (url: URL?) in url.map { !FileManager.default.fileExists(atPath: $0.path) } ?? false }
            for item in items {
                let picture = missing(box.inputURL(item.job)) ? item.inputs.picture : nil
                let mask = missing(box.maskURL(item.job)) ? item.inputs.mask : nil
                guard picture != nil || mask != nil else { continue }
                try box.storeInputs(folder: item.job.folder, spec: item.job.spec, picture: picture, mask: mask)
            }
        } catch {
            Log.error("cannot keep a copy of the job's pictures in the outbox: \(error)")
            return SysExits.cantCreate
        }

        let counts = jobs.map(\.spec.imageCount)
        let shares = shard.images(jobCounts: counts)
        if shard.count > 1 {
            Log.info("task \(shard): \(shares.map(\.count).reduce(0, +)) of \(counts.reduce(0, +)) image(s) in \(jobs.count) job(s)")
        }
        let models = ModelCache(factory: factory)
        let threadCount = threads ?? config?.effectiveThreads ?? ProcessInfo.processInfo.activeProcessorCount
        let runner = JobRunner(outbox: box, models: models, threads: threadCount,
                               shouldStop: { Signals.stopRequested ? .shutdown : nil },
                               onProgress: { p in Log.debug("\(p.id): image \(p.image + 1)/\(p.images) step \(p.step)/\(p.steps)") })
        var failures = 0
        for (j, job) in jobs.enumerated() where !shares[j].isEmpty {
            if Signals.stopRequested { return SysExits.tempFail }
            let owners = Shard.owners(job: j, jobCounts: counts, count: shard.count)
            switch runShare(job, images: shares[j], owners: owners, runner: runner, outbox: box) {
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

    /// Makes this task's `images` of `job` that are not complete yet, keeping its record
    /// current, then merges the job's `result.json` if the job is finished.
    private func runShare(_ job: JobRecord, images: [Int], owners: [Int], runner: JobRunner, outbox box: Outbox) -> RunOutcome {
        let clock = Date()
        box.removeAbandonedTemporaryFiles(job)
        let previous = JobFolderState(job, outbox: box, readImages: false).record(shard)
        let mine = Set(images.map { String(format: "image-%03d.png", $0 + 1) })
        let now = Outbox.iso(clock.timeIntervalSince1970)
        // A rerun of this task carries its earlier attempts' images, time and count over.
        var record = ShardRecord(shard: shard.index, shards: shard.count, status: .running,
                                 parameters: job.spec.parameters(model: job.model),
                                 images: (previous?.images ?? []).filter { mine.contains($0.file) },
                                 assigned: images.count, host: AtomicFile.hostName, pid: getpid(),
                                 schedulerTask: schedulerTask, started: previous?.started ?? now, attemptStarted: now,
                                 finished: nil, seconds: previous?.seconds ?? 0, attempts: (previous?.attempts ?? 0) + 1,
                                 error: nil, warnings: previous?.warnings)
        record.weights = previous?.weights
        let earlierSeconds = record.seconds
        let todo = images.filter { !box.hasCompleteImage(job, $0) }
        Log.info("\(job.id): \(job.spec.imageCount) image(s), \(job.spec.width)x\(job.spec.height), \(job.spec.steps) steps, seed \(job.spec.seed ?? 0)"
                 + (shard.count > 1 || todo.count < images.count ? "; this task: \(todo.count) to make of its \(images.count)" : ""))
        var outcome = RunOutcome.done
        do {
            try box.prepare(job)
            try box.writeShardRecord(record, for: job)
            // Only load the model when there is something to make (a finished task's rerun is quick).
            let engine = todo.isEmpty ? nil : try runner.load(job, model: resolveModel(job))
            if let engine {
                let warnings = engine.warnings + [runner.keptWeightsWarning(job, indices: images, weights: engine.weights)].compactMap { $0 }
                record.warnings = warnings.isEmpty ? nil : warnings
                record.weights = engine.weights.rawValue
            }
            let found: (JobResult.Image, Bool) throws -> Void = { image, made in
                if let i = record.images.firstIndex(where: { $0.file == image.file }) {
                    if made { record.images[i] = image }
                } else {
                    record.images.append(image)
                    record.images.sort { $0.file < $1.file }
                }
                if made {
                    record.seconds = earlierSeconds + Date().timeIntervalSince(clock)
                    try box.writeShardRecord(record, for: job)
                }
            }
            if let engine {
                outcome = try runner.makeImages(job, indices: images, generator: engine.generator,
                                                weights: engine.weights, onImage: found)
            } else {
                for index in images {
                    try found(.init(file: box.imageURL(job, index).lastPathComponent, seed: job.spec.seed(ofImage: index), seconds: nil), false)
                }
            }
        } catch {
            outcome = .failed("\(error)")
        }
        switch outcome {
        case .done: record.status = .done
        case .failed(let message): record.status = .failed; record.error = message
        case .interrupted, .cancelled: record.status = .interrupted
        }
        record.seconds = earlierSeconds + Date().timeIntervalSince(clock)
        record.finished = Outbox.iso(Date().timeIntervalSince1970)
        do {
            try box.writeShardRecord(record, for: job)
            let state = JobFolderState(job, outbox: box)
            if let merged = ShardMerge.merged(state, owners: owners, shards: shard.count),
               try ShardMerge.write(merged, for: job, in: box, existing: state.result) {
                Log.info("\(job.id): wrote result.json (\(merged.status), \(merged.images.count) of \(job.spec.imageCount) images)")
                if merged.status == JobState.done.rawValue, let grid = job.spec.grid { try runner.writeGrid(job, grid) }
            }
        } catch {
            Log.error("\(job.id): cannot write its record or result.json: \(error)")
            if outcome == .done { outcome = .failed("cannot write its record or result.json: \(error)") }
        }
        return outcome
    }

    private func resolveModel(_ job: JobRecord) -> () throws -> ModelReference {
        {
            if let model { return model }
            guard let configured = config?.models[job.model] else { throw RunError("model \(job.model) is not configured") }
            return configured
        }
    }
}
