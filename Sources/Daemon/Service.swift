import ControlProtocol
import Foundation
import Jobs
#if canImport(Glibc)
import Glibc
#endif

/// The long-running service: intake on the main thread, the worker thread that feeds and
/// watches the worker process, the control server (see `startControlServer`), sd_notify and signals.
public final class Service {
    private let configPath: String?
    private let overrides: CommandLineOverrides
    private let settings: SettingsBox
    private let notifier = SystemdNotifier()
    private var lockFD: Int32 = -1

    /// Paths and the thread count given on the command line, which win over the config
    /// file's, also on a SIGHUP reload.
    public struct CommandLineOverrides: Sendable {
        public var inbox, outbox, state, socket: URL?
        /// `--threads`: the engine's cores.
        public var threads: Int?
        public init(inbox: URL? = nil, outbox: URL? = nil, state: URL? = nil, socket: URL? = nil, threads: Int? = nil) {
            self.inbox = inbox; self.outbox = outbox; self.state = state; self.socket = socket
            self.threads = threads
        }
        func apply(to config: inout ServiceConfig) {
            if let inbox { config.inbox = inbox }
            if let outbox { config.outbox = outbox }
            if let state { config.state = state }
            if let socket { config.socket = socket }
            if let threads { config.threads = threads }
        }
    }

    /// The engine runs in a worker process (`diffusiond --worker`), never in the service.
    public init(config: ServiceConfig, configPath: String?, overrides: CommandLineOverrides) {
        var config = config
        overrides.apply(to: &config)
        self.settings = SettingsBox(config)
        self.configPath = configPath
        self.overrides = overrides
    }

    /// Runs until SIGTERM/SIGINT; returns the process exit status (sysexits).
    public func run() -> Int32 {
        let config = settings.config
        let outbox = Outbox(root: config.outbox)
        let queue: JobQueue
        do {
            for dir in [config.inbox, config.outbox, outbox.rejected, config.state,
                        config.state.appendingPathComponent("claimed")] {
                try AtomicFile.makeDirectory(dir)
            }
            try Service.requireOneFileSystem([config.inbox, config.state, config.outbox])
            if let problem = InboxPermissions.check(inbox: config.inbox) { Log.warning(problem) }
            guard lockState(config.state) else {
                Log.error("another diffusiond is using the state directory \(config.state.path)")
                return SysExits.tempFail
            }
            // The daemon's user is decided here, once, for the queue and the control server alike.
            queue = try JobQueue(stateDirectory: config.state, keepHistory: config.keepHistory,
                                 policy: .forThisProcess())
            queue.writeTerminalResult = { job in try outbox.writeResult(job, images: [], seconds: nil) }
            // Half-written temporaries of a killed daemon: never renamed, so never seen; removed.
            for folder in [config.state, outbox.rejected] + queue.all().filter({ !$0.state.isFinal }).map(outbox.folder) {
                Outbox.removeTemporaryFiles(in: folder)
            }
            try queue.recover(existingResult: outbox.recordedResult)
        } catch {
            Log.error("cannot start: \(error)")
            return SysExits.cantCreate
        }
        let intake = Intake(inbox: config.inbox, stateDirectory: config.state, queue: queue, outbox: outbox,
                            parser: config.jobParser, defaultModel: config.defaultModel)
        // Control socket up, then READY=1, then the worker: `systemctl start` returns with the
        // socket usable, and READY=1 is the first thing systemd hears. A socket directory that
        // another user could write in stops the start before any file is taken in.
        let worker = Worker(queue: queue, outbox: outbox, notifier: notifier, settings: settings)
        let control: ControlServer?
        do {
            control = try startControlServer(queue: queue, outbox: outbox, worker: worker, intakeLog: intake.outcomes)
        } catch {
            Log.error("cannot start: control socket: \(error)")
            return SysExits.cantCreate
        }
        intake.recoverClaims()
        let watcher: InboxWatcher?
        do {
            watcher = try InboxWatcher(directory: config.inbox)
        } catch {
            Log.warning("\(error); falling back to rescanning the inbox every second")
            watcher = nil
        }
        var recheckAt: Date? = intake.rescan() ? Date().addingTimeInterval(Intake.settleSeconds) : nil

        let queued = queue.all().filter { $0.state == .queued }.count
        Log.notice("diffusiond ready: inbox \(config.inbox.path), outbox \(config.outbox.path), engine threads \(config.effectiveThreads), \(queued) job(s) queued")
        notifier.ready(status: "ready, \(queued) queued")
        // Started only after READY=1: the worker's first STATUS=/WATCHDOG=1 must not precede it.
        worker.start()

        var lastRescan = Date()
        while !Signals.stopRequested {
            if Signals.takeReloadRequest() { reload(intake: intake, queue: queue) }
            let change = watcher?.wait(timeout: 1) ?? { sleep(1); return .overflow }()
            switch change {
            case .files(let names): intake.take(names)
            case .overflow:
                if watcher != nil { Log.notice("inotify queue overflowed; rescanning the inbox") }
                recheckAt = nil
                lastRescan = Date()
                if intake.rescan() { recheckAt = Date().addingTimeInterval(Intake.settleSeconds) }
            case .timeout: break
            }
            intake.retryFailedClaimsIfDue()
            // Periodic safety net, and a quick second look at files that were still fresh.
            if Date().timeIntervalSince(lastRescan) >= Double(settings.config.rescanInterval) || recheckAt.map({ Date() >= $0 }) == true {
                recheckAt = nil
                lastRescan = Date()
                if intake.rescan() { recheckAt = Date().addingTimeInterval(Intake.settleSeconds) }
            }
        }
        Log.notice("stopping: finishing the current step")
        notifier.stopping()
        queue.wake()
        worker.join()
        control?.stop()
        Log.notice("diffusiond stopped")
        return SysExits.ok
    }

    /// The one place where the service creates and starts its control server
    /// (Sources/Daemon/Control), serving `queue` through `QueueControlHandler`. Throws only
    /// for a socket directory it must not use (the start is refused); other socket errors
    /// are logged and the daemon runs on without a socket.
    private func startControlServer(queue: JobQueue, outbox: Outbox, worker: Worker, intakeLog: IntakeLog) throws -> ControlServer? {
        let handler = QueueControlHandler(queue: queue, outbox: outbox, settings: settings, intakeLog: intakeLog,
                                          loadedModel: { worker.loadedModel })
        let server = ControlServer(configuration: .init(socketPath: settings.config.socket.path), handler: handler,
                                   policy: queue.policy)
        do {
            try server.start()
            return server
        } catch let error as ControlSocketError {
            if case .unsafeDirectory = error { throw error }
            Log.error("control socket: \(error); diffusionctl will not reach this daemon")
            return nil
        } catch {
            Log.error("control socket: \(error); diffusionctl will not reach this daemon")
            return nil
        }
    }

    /// SIGHUP: re-reads the config file. Limits, defaults, models, threads, rescan interval
    /// and history apply at once; new spool or socket paths need a restart.
    private func reload(intake: Intake, queue: JobQueue) {
        guard let configPath else { return }
        notifier.reloading()
        defer { notifier.status("reloaded") }
        do {
            var fresh = try ServiceConfig.load(path: configPath)
            overrides.apply(to: &fresh)
            // Exactly what --check-config refuses keeps the running config.
            let validation = ConfigValidation(fresh, path: configPath)
            for warning in validation.warnings { Log.warning("reload: \(warning)") }
            guard validation.errors.isEmpty else {
                for error in validation.errors { Log.error("reload: \(error)") }
                throw RunError("\(validation.errors.count) error(s), as diffusiond --check-config reports them")
            }
            let old = settings.config
            if fresh.inbox != old.inbox || fresh.outbox != old.outbox || fresh.state != old.state || fresh.socket != old.socket {
                Log.warning("reload: new inbox/outbox/state/socket paths take effect at the next restart")
                fresh.inbox = old.inbox; fresh.outbox = old.outbox; fresh.state = old.state; fresh.socket = old.socket
            }
            settings.config = fresh
            intake.parser = fresh.jobParser
            intake.defaultModel = fresh.defaultModel
            queue.keepHistory = fresh.keepHistory
            Log.notice("reloaded \(configPath): models \(fresh.models.keys.sorted().joined(separator: ", ")); engine threads \(fresh.effectiveThreads)")
        } catch {
            Log.error("reload failed, keeping the running config: \(error)")
        }
        notifier.notify("READY=1")
    }

    /// Holds an exclusive lock on `state/lock` for the life of the process.
    private func lockState(_ state: URL) -> Bool {
        lockFD = open(state.appendingPathComponent("lock").path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        return lockFD >= 0 && flock(lockFD, LOCK_EX | LOCK_NB) == 0
    }

    /// Claims and rejections are renames, so the spool folders must share one file system.
    static func requireOneFileSystem(_ dirs: [URL]) throws {
        var devices = Set<UInt64>()
        for dir in dirs {
            var st = stat()
            guard stat(dir.path, &st) == 0 else { throw FileError("stat", dir.path) }
            devices.insert(UInt64(st.st_dev))
        }
        guard devices.count == 1 else {
            throw RunError("inbox, state and outbox must be on one file system (files move between them by rename)")
        }
    }
}
