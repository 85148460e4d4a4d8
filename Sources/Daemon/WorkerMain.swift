import ControlProtocol
import Foundation
import Jobs
#if canImport(Glibc)
import Glibc
#endif

/// The worker process, `diffusiond --worker FD`: started by the daemon (`WorkerProcess`),
/// it holds the engine and the loaded model and runs the jobs the daemon sends over fd `FD`
/// (`WorkerMessages.swift`), one at a time, each on all configured cores. It reads no config,
/// owns no queue, journal or socket, and exits when the daemon closes its end or dies.
enum WorkerMain {
    /// Raised to the worker's own /proc/self/oom_score_adj (capped at 1000): under memory
    /// pressure the kernel kills the worker, which holds the model, before the daemon.
    static let oomScoreRaise = 500

    /// Runs the worker until the daemon closes the socket; returns the exit status.
    static func run(fd: Int32, factory: @escaping GeneratorFactory) -> Int32 {
        // Operators and systemd signal the daemon; the worker stops when the daemon says so.
        // (SIGTERM to the whole cgroup on `systemctl stop` must not cut a step short.)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { _ = Glibc.signal(signal, SIG_IGN) }
        closeInheritedDescriptors(above: fd)
        raiseOOMScore()
        let channel = LineChannel(fd: fd, maxLineBytes: WorkerWire.maxLineBytes)
        let state = WorkerState()
        let reader = Thread {
            // Orders come in while a job runs; end of stream means the daemon is gone (or
            // stopping us): leave at once, whatever runs.
            while true {
                guard let line = try? channel.readLine(), let order = try? WireCodec.decode(WorkerOrder.self, from: line) else {
                    _exit(0)
                }
                if let run = order.run { state.push(run) }
                if let id = order.cancel { state.cancel(id) }
                if order.stop == true { state.shutDown() }
            }
        }
        reader.name = "worker-orders"
        reader.start()
        let models = ModelCache(factory: factory)
        guard (try? channel.write(WorkerReport(hello: getpid()))) != nil else { return SysExits.ioError }
        let testFaults = ProcessInfo.processInfo.environment["DIFFUSIOND_TEST_FAULTS"] == "1"
        while true {
            let order = state.pop()
            let fault = testFaults ? testFault(in: order.job.spec.prompt) : nil
            var loaded = models.loadedName
            let runner = JobRunner(outbox: Outbox(root: URL(fileURLWithPath: order.outbox)), models: models, threads: order.threads,
                                   shouldStop: { state.stopReason(order.job.id) },
                                   onProgress: { progress in
                                       if let fault { raise(fault) }
                                       if models.loadedName != loaded {
                                           loaded = models.loadedName
                                           _ = try? channel.write(WorkerReport(loaded: loaded))
                                       }
                                       _ = try? channel.write(WorkerReport(progress: progress))
                                   })
            let report = runner.run(order.job) {
                guard let model = order.model else { throw RunError("model \(order.job.model) is not in the config's models") }
                return model.reference
            }
            if models.loadedName != loaded { _ = try? channel.write(WorkerReport(loaded: models.loadedName)) }
            guard (try? channel.write(WorkerReport(finished: report))) != nil else { return SysExits.ioError }
        }
    }

    /// Test-only fault switch, honoured only with DIFFUSIOND_TEST_FAULTS=1 in the
    /// environment (never set by the unit or the daemon): a prompt containing
    /// `test-fault:SIGSEGV` (or another signal name) makes the worker raise that signal at
    /// its first step, as an engine fault would.
    static func testFault(in prompt: String) -> Int32? {
        WorkerExit.names.first { prompt.contains("test-fault:\($0.name)") }?.value
    }

    /// Makes this process the OOM killer's first choice: its score, inherited from the
    /// daemon (the unit's `OOMScoreAdjust=`), plus ``oomScoreRaise``. Raising needs no privilege.
    static func raiseOOMScore() {
        let path = "/proc/self/oom_score_adj"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let current = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return }
        let raised = min(1000, current + oomScoreRaise)
        do {
            try "\(raised)\n".write(toFile: path, atomically: false, encoding: .utf8)
        } catch {
            Log.warning("worker: cannot raise its oom_score_adj to \(raised): \(error)")
        }
    }

    /// Closes descriptors the daemon left open by mistake (anything above the order socket
    /// and the standard three), so the worker never holds the daemon's sockets or lock.
    static func closeInheritedDescriptors(above fd: Int32) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for entry in entries {
            if let n = Int32(entry), n > 2, n != fd { _ = close(n) }
        }
    }
}

/// The worker's orders and stop requests, shared between its reader thread and its job loop.
private final class WorkerState: @unchecked Sendable {
    private let condition = NSCondition()
    private var orders: [RunOrder] = []
    private var cancelled = Set<String>()
    private var shuttingDown = false

    func push(_ order: RunOrder) {
        condition.lock()
        orders.append(order)
        condition.signal()
        condition.unlock()
    }

    func pop() -> RunOrder {
        condition.lock()
        defer { condition.unlock() }
        while orders.isEmpty { condition.wait() }
        return orders.removeFirst()
    }

    func cancel(_ id: String) {
        condition.lock()
        cancelled.insert(id)
        condition.unlock()
    }

    /// For good: the daemon sends no more jobs after a stop.
    func shutDown() {
        condition.lock()
        shuttingDown = true
        condition.unlock()
    }

    /// Why job `id` should stop now, if it should; a shutdown wins over a cancel.
    func stopReason(_ id: String) -> StopReason? {
        condition.lock()
        defer { condition.unlock() }
        if shuttingDown { return .shutdown }
        return cancelled.contains(id) ? .cancelled : nil
    }
}
