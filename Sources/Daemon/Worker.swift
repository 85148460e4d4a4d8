import Foundation
import Jobs

/// The daemon's side of job running: one thread that takes jobs from the queue, one at a
/// time, and has a worker process (`WorkerProcess`, `WorkerMain`) run each on all configured
/// cores, relaying cancel and shutdown to it and its progress to the queue and systemd. The
/// daemon never loads a model. When the worker dies of a fault while running a job, the job
/// gets a strike (``maxStrikes`` fail it, naming the signal) and the next job gets a fresh
/// worker.
final class Worker {
    private let queue: JobQueue
    private let outbox: Outbox
    private let notifier: SystemdNotifier
    private let settings: SettingsBox
    private let finished = DispatchSemaphore(value: 0)
    private var process: WorkerProcess?

    /// Deaths of the worker by a fault while running a job after which the job is failed.
    static let maxStrikes = 3
    /// Seconds to wait before starting a worker again after one could not start.
    static let restartDelaySeconds = 5.0

    init(queue: JobQueue, outbox: Outbox, notifier: SystemdNotifier, settings: SettingsBox) {
        self.queue = queue
        self.outbox = outbox
        self.notifier = notifier
        self.settings = settings
    }

    func start() {
        let thread = Thread { [self] in
            loop()
            process?.stop()
            process = nil
            finished.signal()
        }
        thread.name = "worker"
        thread.start()
    }

    /// Name of the model the worker process holds loaded (read from other threads).
    var loadedModel: String? {
        loadedLock.lock()
        defer { loadedLock.unlock() }
        return loadedName
    }
    private let loadedLock = NSLock()
    private var loadedName: String?
    private func setLoaded(_ name: String?) {
        loadedLock.lock()
        loadedName = name
        loadedLock.unlock()
    }

    /// Waits for the worker to leave its loop (after a stop request).
    func join() { finished.wait() }

    private func loop() {
        var lastIdleStatus = ""
        // A worker is started ahead of the job it will run (at start, and after one died):
        // starting a process is no part of any job's time.
        while true {
            if let failure = startWorkerIfNeeded() { Log.error("\(failure); trying again when a job is due") }
            guard let job = queue.next(loadedModel: loadedModel, idle: { [self] in
            notifier.watchdog()
            let queued = queue.all().filter { $0.state == .queued }.count
            let status = queue.paused ? "paused, \(queued) queued" : "idle, \(queued) queued"
            if status != lastIdleStatus { notifier.status(status); lastIdleStatus = status }
        }, shouldStop: { Signals.stopRequested }) else { break }
            lastIdleStatus = ""
            Log.info("job \(job.id) started (priority \(job.priority), model \(job.model), \(job.spec.width)x\(job.spec.height), \(job.spec.steps) steps, attempt \(job.attempts))")
            notifier.status("job \(job.id) starting")
            notifier.watchdog()
            switch runInWorker(job) {
            case .report(let report):
                record(report)
            case .died(let exit, let killedByDaemon):
                recordDeath(of: job, exit: exit, killedByDaemon: killedByDaemon)
            case .notStarted(let reason):
                Log.error("job \(job.id): \(reason); queued again, next try in \(Int(Worker.restartDelaySeconds)) s")
                requeueWithoutStrike(job)
                let until = Date().addingTimeInterval(Worker.restartDelaySeconds)
                while Date() < until, !Signals.stopRequested { usleep(200_000) }
            }
        }
    }

    /// Starts a worker process unless one is running or the daemon is stopping; the reason
    /// when one could not be started.
    @discardableResult
    private func startWorkerIfNeeded() -> String? {
        guard process == nil, !Signals.stopRequested else { return nil }
        do {
            let started = try WorkerProcess.spawn(waiting: notifier.watchdog)
            Log.info("worker process \(started.pid) started")
            process = started
            return nil
        } catch {
            return "\(error)"
        }
    }

    private enum Ending {
        case report(RunReport)
        case died(WorkerExit, killedByDaemon: Bool)
        case notStarted(String)
    }

    /// Has the worker process (started if needed) run `job`; relays cancel and shutdown to
    /// it and its progress out, and returns its report or how it died.
    private func runInWorker(_ job: JobRecord) -> Ending {
        if let idle = process, idle.hasExited {
            Log.warning("worker process \(idle.pid) ended while idle (\(idle.reap())); starting another")
            process = nil
            setLoaded(nil)
        }
        if let failure = startWorkerIfNeeded() { return .notStarted(failure) }
        guard let worker = process else { return .notStarted("no worker process") }
        let config = settings.config
        let order = RunOrder(job: job, outbox: outbox.root.path, model: config.models[job.model].map(ModelOrder.init),
                             threads: config.effectiveThreads)
        _ = worker.send(WorkerOrder(run: order))
        var sentCancel = false, sentStop = false
        while true {
            if !sentStop, Signals.stopRequested {
                sentStop = true
                _ = worker.send(WorkerOrder(stop: true))
            }
            if !sentCancel, queue.isCancelRequested(job.id) {
                sentCancel = true
                _ = worker.send(WorkerOrder(cancel: job.id))
            }
            switch worker.receive() {
            case .timeout:
                continue
            case .closed:
                let exit = worker.reap()
                process = nil
                setLoaded(nil)
                return .died(exit, killedByDaemon: worker.killedByDaemon)
            case .report(let report):
                // Liveness of the engine, as when it ran in this process: each step pings.
                notifier.watchdog()
                if let name = report.loaded { setLoaded(name) }
                if let progress = report.progress {
                    notifier.status("job \(progress.id) image \(progress.image + 1)/\(progress.images) step \(progress.step)/\(progress.steps)")
                    queue.reportProgress(progress)
                }
                if let finished = report.finished { return .report(finished) }
            }
        }
    }

    /// The worker died while running `job`: a strike when it died of a fault (the job is
    /// failed at ``maxStrikes``), else the job is queued again as it was.
    private func recordDeath(of job: JobRecord, exit: WorkerExit, killedByDaemon: Bool) {
        if queue.isCancelRequested(job.id) {
            // It was being cancelled: cancelled it is, whatever ended the worker.
            Log.warning("job \(job.id): the worker process ended (\(exit)) while the job was being cancelled")
            var cancelled = job
            cancelled.state = .cancelled
            cancelled.error = "cancelled while running"
            cancelled.finished = Date().timeIntervalSince1970
            record(RunReport(outcome: .cancelled, job: cancelled, resultPending: true))
            return
        }
        guard let reason = exit.strikeReason(killedByDaemon: killedByDaemon) else {
            Log.warning("job \(job.id): the worker process ended (\(exit)) while running it; queued again without a strike")
            requeueWithoutStrike(job)
            return
        }
        while true {
            do {
                try queue.strike(job.id, reason: reason, maxStrikes: Worker.maxStrikes)
                return
            } catch {
                Log.error("job \(job.id): cannot record the worker's death (\(error)); trying again in \(Int(Worker.recordRetrySeconds)) s")
                if !waitForRetry() { return }
            }
        }
    }

    /// Back to `queued`, the attempt given back; on a disk that refuses, the journal keeps
    /// it `running` and the next start queues it again, also without a strike.
    private func requeueWithoutStrike(_ job: JobRecord) {
        do {
            try queue.finish(job.id, state: .queued, error: nil, interrupted: true)
        } catch {
            Log.error("job \(job.id): cannot queue it again (\(error)); it runs again at the next start")
        }
    }

    /// Waits ``recordRetrySeconds``, pinging the watchdog; false on shutdown.
    private func waitForRetry() -> Bool {
        let until = Date().addingTimeInterval(Worker.recordRetrySeconds)
        while Date() < until, !Signals.stopRequested {
            notifier.watchdog()
            usleep(200_000)
        }
        return !Signals.stopRequested
    }

    /// Seconds between tries to record an outcome the disk would not take.
    static let recordRetrySeconds = 5.0

    /// Writes a pending `result.json`, then journals the outcome; while the disk refuses
    /// (full), tries again every few seconds, since the job's state in the queue must not
    /// move past what is on disk. Gives up only on shutdown: then the files decide at the
    /// next start (a job without `result.json` runs again, keeping its complete images).
    private func record(_ report: RunReport) {
        let job = report.job
        var pending = report.resultPending
        var failing: String?
        while true {
            do {
                if pending { try report.writeResult(to: outbox); pending = false }
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
                _ = waitForRetry()
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
