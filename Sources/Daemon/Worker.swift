import Foundation
import Jobs

/// The one thread that runs jobs, one at a time, each using all configured cores.
final class Worker {
    private let queue: JobQueue
    private let outbox: Outbox
    private let models: ModelCache
    private let notifier: SystemdNotifier
    private let settings: SettingsBox
    private let finished = DispatchSemaphore(value: 0)

    init(queue: JobQueue, outbox: Outbox, factory: @escaping GeneratorFactory, notifier: SystemdNotifier, settings: SettingsBox) {
        self.queue = queue
        self.outbox = outbox
        self.models = ModelCache(factory: factory)
        self.notifier = notifier
        self.settings = settings
    }

    func start() {
        let thread = Thread { [self] in
            loop()
            finished.signal()
        }
        thread.name = "worker"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Name of the model held loaded (read from other threads).
    var loadedModel: String? {
        loadedLock.lock()
        defer { loadedLock.unlock() }
        return loadedName
    }
    private let loadedLock = NSLock()
    private var loadedName: String?

    /// Waits for the worker to leave its loop (after a stop request).
    func join() { finished.wait() }

    private func loop() {
        var lastIdleStatus = ""
        while let job = queue.next(loadedModel: models.loadedName, idle: { [self] in
            notifier.watchdog()
            let queued = queue.all().filter { $0.state == .queued }.count
            let status = queue.paused ? "paused, \(queued) queued" : "idle, \(queued) queued"
            if status != lastIdleStatus { notifier.status(status); lastIdleStatus = status }
        }, shouldStop: { Signals.stopRequested }) {
            lastIdleStatus = ""
            Log.info("job \(job.id) started (priority \(job.priority), model \(job.model), \(job.spec.width)x\(job.spec.height), \(job.spec.steps) steps, attempt \(job.attempts))")
            notifier.status("job \(job.id) starting")
            notifier.watchdog()
            let config = settings.config
            let runner = JobRunner(outbox: outbox, models: models, threads: config.effectiveThreads,
                                   shouldStop: { [queue] in
                                       if Signals.stopRequested { return .shutdown }
                                       return queue.isCancelRequested(job.id) ? .cancelled : nil
                                   },
                                   onProgress: { [queue, notifier] progress in
                                       notifier.watchdog()
                                       notifier.status("job \(progress.id) image \(progress.image + 1)/\(progress.images) step \(progress.step)/\(progress.steps)")
                                       queue.reportProgress(progress)
                                   })
            let report = runner.run(job) {
                guard let model = settings.config.models[job.model] else {
                    throw RunError("model \(job.model) is not in the config's models")
                }
                return model
            }
            loadedLock.lock()
            loadedName = models.loadedName
            loadedLock.unlock()
            record(report)
        }
    }

    /// Seconds between tries to record an outcome the disk would not take.
    static let recordRetrySeconds = 5.0

    /// Writes a pending `result.json`, then journals the outcome; while the disk refuses
    /// (full), tries again every few seconds, since the job's state in the queue must not
    /// move past what is on disk. Gives up only on shutdown: then the files decide at the
    /// next start (a job without `result.json` runs again, keeping its complete images).
    private func record(_ report: RunReport) {
        let job = report.job
        var pending = report.pendingResult
        var failing: String?
        while true {
            do {
                if let write = pending { try write(); pending = nil }
                switch report.outcome {
                case .interrupted:
                    try queue.finish(job.id, state: .queued, error: nil, interrupted: true)
                    Log.notice("job \(job.id) interrupted by shutdown; it resumes at the next start")
                case .done:
                    try queue.finish(job.id, state: .done, error: nil)
                    Log.info("job \(job.id) done → \(job.folder)/")
                case .cancelled:
                    try queue.finish(job.id, state: .cancelled, error: job.error)
                    Log.notice("job \(job.id) cancelled")
                case .failed(let message):
                    try queue.finish(job.id, state: .failed, error: message)
                    Log.error("job \(job.id) failed: \(message); `diffusionctl retry \(job.id)` runs it again, keeping its complete images")
                }
                if failing != nil { Log.notice("job \(job.id): its outcome is recorded now") }
                return
            } catch {
                if Signals.stopRequested {
                    Log.error("job \(job.id): cannot record its outcome (\(error)); its files decide at the next start")
                    return
                }
                if failing != "\(error)" {
                    Log.error("job \(job.id): cannot record its outcome (\(error)); trying again every \(Int(Worker.recordRetrySeconds)) s")
                    failing = "\(error)"
                }
                let until = Date().addingTimeInterval(Worker.recordRetrySeconds)
                while Date() < until, !Signals.stopRequested {
                    notifier.watchdog()
                    usleep(200_000)
                }
            }
        }
    }
}

/// The reloadable configuration, shared between threads.
final class SettingsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var current: ServiceConfig
    init(_ config: ServiceConfig) { current = config }
    var config: ServiceConfig {
        get { lock.lock(); defer { lock.unlock() }; return current }
        set { lock.lock(); current = newValue; lock.unlock() }
    }
}

extension ServiceConfig {
    /// `threads`, with 0 meaning every core.
    var effectiveThreads: Int { threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount }
}
