import Foundation
import ControlProtocol

/// Estimates for `watch`: speed of the running job and time left for it and the queue.
public struct WatchEstimate: Codable, Equatable {
    /// Steps per second (measured over recent step events, else as the daemon reports it).
    public var rate: Double?
    /// Seconds left for the running job.
    public var etaJob: Double?
    /// Seconds left for the running job plus every queued (not held) job, at the same speed.
    public var etaQueue: Double?
    /// Jobs waiting to run (queued, not held).
    public var queuedJobs: Int
    /// Steps left in the running job and the queued jobs.
    public var remainingSteps: Int

    enum CodingKeys: String, CodingKey {
        case rate, etaJob = "eta_job", etaQueue = "eta_queue", queuedJobs = "queued_jobs", remainingSteps = "remaining_steps"
    }

    /// Computes the estimate from the running job, the queue and a speed.
    public static func make(running: JobInfo?, queue: [JobInfo], rate: Double?) -> WatchEstimate {
        let waiting = queue.filter { $0.state == .queued && $0.id != running?.id }
        let runningLeft = running?.remainingSteps ?? 0
        let total = runningLeft + waiting.reduce(0) { $0 + $1.remainingSteps }
        let usable = rate.flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
        return WatchEstimate(rate: usable,
                             etaJob: running != nil ? usable.map { Double(runningLeft) / $0 } : nil,
                             etaQueue: usable.map { Double(total) / $0 },
                             queuedJobs: waiting.count, remainingSteps: total)
    }
}

/// Measures steps per second from step events: over a window of the last samples of the
/// same job, so a model load or a job change does not skew it.
public struct StepRateMeter {
    private var samples: [(at: Date, steps: Int)] = []
    private var jobID: String?
    public let window: Int

    public init(window: Int = 12) { self.window = window }

    /// Adds a step event; returns the current rate, if two samples of the job exist.
    public mutating func add(id: String, at: Date, completedSteps: Int) -> Double? {
        if id != jobID || (samples.last.map { completedSteps < $0.steps } ?? false) {
            samples.removeAll()
            jobID = id
        }
        samples.append((at, completedSteps))
        if samples.count > window { samples.removeFirst(samples.count - window) }
        return rate
    }

    public var rate: Double? {
        guard let first = samples.first, let last = samples.last, samples.count >= 2 else { return nil }
        let seconds = last.at.timeIntervalSince(first.at)
        guard seconds > 0 else { return nil }
        return Double(last.steps - first.steps) / seconds
    }
}

/// One `watch --json` line: the event plus the estimate after it.
struct WatchLine: Encodable {
    var event: ControlEvent
    var estimate: WatchEstimate
}

/// `watch --once --json`: the state now.
struct WatchSnapshot: Encodable {
    var running: JobInfo?
    var paused: Bool
    var estimate: WatchEstimate
}

/// Renders `diffusionctl watch`.
final class WatchView {
    let socketPath: String
    let json: Bool
    let output: CtlOutput
    private var meter = StepRateMeter()
    private var running: JobInfo?
    private var queue: [JobInfo] = []

    init(socketPath: String, json: Bool, output: CtlOutput) {
        self.socketPath = socketPath
        self.json = json
        self.output = output
    }

    /// Runs until the connection ends (or, with `once`, prints the state now and returns).
    func run(once: Bool) throws {
        let client = try ControlSession(socketPath: socketPath)
        defer { client.close() }
        let status = try client.status()
        running = status.running
        queue = try client.queue(all: false)
        if once {
            let estimate = WatchEstimate.make(running: running, queue: queue, rate: running?.progress?.rate)
            if json {
                output.printJSON(WatchSnapshot(running: running, paused: status.paused, estimate: estimate))
            } else {
                if status.paused { output.out("queue paused: no new job starts until `diffusionctl resume`\n") }
                output.out(line(estimate) + "\n")
            }
            return
        }
        if !json {
            if status.paused { output.out("queue paused: no new job starts until `diffusionctl resume`\n") }
            output.out(line(WatchEstimate.make(running: running, queue: queue, rate: nil)) + "\n")
        }
        try client.watch { event in
            handle(event)
            return true
        }
        if output.isTerminal && !json { output.out("\n") }
        output.err("diffusionctl: diffusiond closed the connection (stopped or restarting)\n")
    }

    private func handle(_ event: ControlEvent) {
        switch event.knownKind {
        case .step:
            if let progress = event.progress, let id = event.id {
                if running?.id != id { running = queue.first { $0.id == id } ?? running }
                running?.progress = progress
                running?.state = .running
                let measured = meter.add(id: id, at: event.at, completedSteps: progress.completedSteps)
                // The windowed measurement reflects the current speed; the daemon's figure
                // (its own average) covers the first step of a job.
                emit(event, rate: measured ?? progress.rate, redraw: true)
                return
            }
        case .jobStarted:
            running = event.job
            refreshQueue()
            if !json { output.out(clearLine + "started  \(event.job.map { "\($0.id) \($0.name) [\($0.model)]" } ?? event.id ?? "")\n") }
        case .jobFinished:
            if let job = event.job, !json {
                output.out(clearLine + "finished \(job.id) \(job.name): \(job.state.rawValue)\(job.error.map { " (\($0))" } ?? "")\n")
            }
            if running?.id == event.id { running = nil }
            refreshQueue()
        case .queueChanged:
            refreshQueue()
        case .preview:
            if !json, let path = event.preview {
                let at = event.progress.map { " image \($0.image + 1)/\($0.count) step \($0.step)/\($0.total)" } ?? ""
                output.out(clearLine + "preview  \(event.id ?? "")\(at): \(path)\n")
            }
        case nil:
            break
        }
        emit(event, rate: meter.rate, redraw: false)
    }

    private var clearLine: String { output.isTerminal ? "\r\u{1B}[K" : "" }

    private func emit(_ event: ControlEvent, rate: Double?, redraw: Bool) {
        let estimate = WatchEstimate.make(running: running, queue: queue, rate: rate)
        if json {
            output.printJSONLine(WatchLine(event: event, estimate: estimate))
        } else if redraw {
            if output.isTerminal {
                output.rawOut(clearLine + PrintableText.escaped(line(estimate)))
            } else {
                output.out(line(estimate) + "\n")
            }
        }
    }

    private func refreshQueue() {
        if let client = try? ControlSession(socketPath: socketPath), let jobs = try? client.queue(all: false) {
            queue = jobs
            client.close()
        }
    }

    /// `j0001 cat [####....] step 5/20 (25%)  2.31 it/s  ETA 6s  queue: 3 jobs, ETA 1m10s`
    func line(_ estimate: WatchEstimate) -> String {
        let speed = estimate.rate.map { String(format: "%.2f it/s", $0) } ?? "— it/s"
        let queueText = "queue: \(estimate.queuedJobs) job\(estimate.queuedJobs == 1 ? "" : "s") waiting, ETA \(CtlFormatting.duration(estimate.etaQueue))"
        guard let job = running else { return "idle  \(queueText)" }
        let fraction = job.progress?.fraction ?? 0
        return "\(job.id) \(job.name) \(CtlFormatting.bar(fraction, width: 24)) \(CtlFormatting.progress(job))  \(speed)  ETA \(CtlFormatting.duration(estimate.etaJob))  \(queueText)"
    }
}
