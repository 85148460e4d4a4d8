import Foundation

/// Parts of ``JobInfo``, nested so they never clash with the daemon's own job types.
extension JobInfo {
    /// The local user that owns a job: the uid that owned the job file when it was claimed.
    public struct Owner: Codable, Equatable, Sendable {
        /// Numeric uid; permissions are decided on this.
        public var uid: UInt32
        /// User name for display (the uid as text when the uid has no passwd entry).
        public var user: String

        public init(uid: UInt32, user: String) {
            self.uid = uid
            self.user = user
        }
    }

    /// Progress of a running job.
    public struct Progress: Codable, Equatable, Sendable {
        /// Completed denoising steps of the current image (0…`total`).
        public var step: Int
        /// Steps per image.
        public var total: Int
        /// 0-based index of the image being generated.
        public var image: Int
        /// Images in the job.
        public var count: Int
        /// Measured speed in steps per second over recent steps, when the daemon knows it.
        public var rate: Double?

        public init(step: Int, total: Int, image: Int, count: Int, rate: Double? = nil) {
            self.step = step
            self.total = total
            self.image = image
            self.count = count
            self.rate = rate
        }

        /// Steps completed over the whole job: `image * total + step`.
        public var completedSteps: Int { image * total + step }
        /// Steps of the whole job: `count * total`.
        public var totalSteps: Int { count * total }
        /// Fraction done over the whole job, in 0…1.
        public var fraction: Double {
            totalSteps > 0 ? min(1, max(0, Double(completedSteps) / Double(totalSteps))) : 0
        }
    }

    /// One image of a job that exists in its outbox folder.
    public struct Image: Codable, Equatable, Sendable {
        /// Full path of the PNG.
        public var path: String
        /// The seed it was made with.
        public var seed: UInt64
        /// Generation time; absent while running or for an image kept from an earlier attempt.
        public var seconds: Double?

        public init(path: String, seed: UInt64, seconds: Double? = nil) {
            self.path = path
            self.seed = seed
            self.seconds = seconds
        }
    }
}

/// One job as both sides see it. Field names are the JSON keys (`diffusionctl --json`).
///
/// New optional fields may be added; clients ignore fields they do not know.
public struct JobInfo: Codable, Equatable, Sendable {
    /// Job id assigned by the daemon at intake; also the outbox folder name.
    public var id: String
    /// The job's `name` label (or the job file's base name when it has none).
    public var name: String
    /// Life-cycle state (``JobState``; its raw value on the wire).
    public var state: JobState
    /// 0–100; `low|normal|high|urgent` are 25/50/75/100.
    public var priority: Int
    public var owner: JobInfo.Owner
    /// Model name as configured (`models:` in diffusiond.yaml).
    public var model: String
    /// When the job was claimed from the inbox.
    public var submitted: Date
    /// When the current or last attempt started running.
    public var started: Date?
    /// When the job reached a final state.
    public var finished: Date?
    public var prompt: String
    /// Denoising steps per image, a `restart` segment's included (what the progress counts).
    public var steps: Int
    /// Images in the job.
    public var count: Int?
    /// Set while running (and kept at its last value when finished).
    public var progress: JobInfo.Progress?
    /// Attempts started so far (a job that was running when the daemon died counts one).
    public var attempts: Int
    /// Why the job failed or was cancelled.
    public var error: String?
    /// Folder with the job's results (`outbox/<id>`), once known.
    public var outbox: String?
    /// Every parameter that makes the job's images (as its `result.json` records them).
    public var parameters: JobParameters?
    /// The job file's name as it was dropped in the inbox.
    public var source: String?
    /// 1-based index of the job's YAML document in that file.
    public var document: Int?
    /// `show`: the images in the outbox folder, in order.
    public var images: [JobInfo.Image]?
    /// `show`: wall time of the last attempt, once finished.
    public var seconds: Double?
    /// A running job asked to stop: it ends as cancelled after its current step.
    public var cancelRequested: Bool?

    /// The state as a person reads it: `running, cancelling …` for a running job asked to stop.
    public var stateDescription: String {
        state == .running && cancelRequested == true ? "running, cancelling (it stops after the current step)" : state.rawValue
    }

    public init(id: String, name: String, state: JobState, priority: Int, owner: JobInfo.Owner,
                model: String, submitted: Date, started: Date? = nil, finished: Date? = nil,
                prompt: String, steps: Int, count: Int? = nil, progress: JobInfo.Progress? = nil,
                attempts: Int = 0, error: String? = nil, outbox: String? = nil, parameters: JobParameters? = nil,
                source: String? = nil, document: Int? = nil, images: [JobInfo.Image]? = nil, seconds: Double? = nil) {
        self.id = id
        self.name = name
        self.state = state
        self.priority = priority
        self.owner = owner
        self.model = model
        self.submitted = submitted
        self.started = started
        self.finished = finished
        self.prompt = prompt
        self.steps = steps
        self.count = count
        self.progress = progress
        self.attempts = attempts
        self.error = error
        self.outbox = outbox
        self.parameters = parameters
        self.source = source
        self.document = document
        self.images = images
        self.seconds = seconds
    }

    /// Mean generation time of the images that report one, if any do.
    public var secondsPerImage: Double? {
        let times = (images ?? []).compactMap(\.seconds)
        return times.isEmpty ? nil : times.reduce(0, +) / Double(times.count)
    }

    /// Steps still to run for this job: all of them when queued, the rest when running.
    public var remainingSteps: Int {
        let total = steps * max(1, count ?? 1)
        switch state {
        case .queued, .held: return total
        case .running: return max(0, total - (progress?.completedSteps ?? 0))
        case .done, .failed, .cancelled: return 0
        }
    }
}

/// A configured model.
public struct ModelInfo: Codable, Equatable, Sendable {
    public var name: String
    /// Diffusers folder.
    public var path: String
    /// Whether jobs without `model` use it.
    public var isDefault: Bool
    /// Whether it is loaded in memory now.
    public var loaded: Bool

    enum CodingKeys: String, CodingKey {
        case name, path, isDefault = "default", loaded
    }

    public init(name: String, path: String, isDefault: Bool, loaded: Bool) {
        self.name = name
        self.path = path
        self.isDefault = isDefault
        self.loaded = loaded
    }
}

/// Daemon summary returned by `status`.
public struct DaemonStatus: Codable, Equatable, Sendable {
    /// diffusiond version string.
    public var version: String
    public var pid: Int32
    /// uid the daemon runs as (the one besides root allowed queue-wide changes).
    public var uid: UInt32
    /// Whether starting new jobs is paused.
    public var paused: Bool
    /// The running job, if any.
    public var running: JobInfo?
    /// Jobs by state (keys are ``JobState`` raw values; this build's daemon and client
    /// list every state, 0 included; an older daemon left zeros out).
    public var counts: [String: Int]
    /// Inbox folder where job files are dropped (`diffusionctl submit` copies there).
    public var inbox: String
    public var outbox: String
    /// Seconds since the daemon started.
    public var uptime: Double
    /// Name of the model loaded in memory, if any.
    public var loadedModel: String?
    /// The control socket: the daemon's configured path (`diffusionctl` puts the path it used).
    public var socket: String?
    /// Files in the outbox's `rejected/` folder (each with its `.error`).
    public var rejected: Int?
    /// ``IntakeOutcome/sequence`` of the latest file taken from the inbox (0: none yet);
    /// absent from daemons that do not serve the `intake` verb.
    public var intakeSequence: Int?

    enum CodingKeys: String, CodingKey {
        case version, pid, uid, paused, running, counts, inbox, outbox, uptime
        case loadedModel = "loaded_model"
        case socket, rejected
        case intakeSequence = "intake_sequence"
    }

    public init(version: String, pid: Int32, uid: UInt32, paused: Bool, running: JobInfo?,
                counts: [String: Int], inbox: String, outbox: String, uptime: Double,
                loadedModel: String?, socket: String? = nil, rejected: Int? = nil, intakeSequence: Int? = nil) {
        self.version = version
        self.pid = pid
        self.uid = uid
        self.paused = paused
        self.running = running
        self.counts = counts
        self.inbox = inbox
        self.outbox = outbox
        self.uptime = uptime
        self.loadedModel = loadedModel
        self.socket = socket
        self.rejected = rejected
        self.intakeSequence = intakeSequence
    }

    /// Count for one state (0 when absent).
    public func count(_ state: JobState) -> Int { counts[state.rawValue] ?? 0 }

    /// `counts` with every ``JobState`` present (0 where absent); other keys are kept.
    public var countsWithZeros: [String: Int] {
        counts.merging(JobState.allCases.map { ($0.rawValue, 0) }) { present, _ in present }
    }
}
