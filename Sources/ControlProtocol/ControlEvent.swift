import Foundation

/// A live event sent to `watch` clients as an `event` line.
public struct ControlEvent: Codable, Equatable, Sendable {
    /// What happened. Decoded as a string so that kinds added later do not break clients.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// A job started running; `job` holds its record.
        case jobStarted = "job_started"
        /// A denoising step completed; `id` and `progress` are set.
        case step
        /// A job reached a final state; `job` holds its record.
        case jobFinished = "job_finished"
        /// The queue changed otherwise (submitted, held, released, priority, paused, resumed).
        case queueChanged = "queue_changed"
        /// A step preview was written (`snapshots: N`); `id`, `progress` (its image and step)
        /// and `preview` (the PNG's path in the outbox) are set.
        case preview
    }

    /// Raw kind (see ``Kind``); unknown kinds from newer servers are kept as text.
    public var kind: String
    /// When it happened (daemon clock).
    public var at: Date
    /// Job id the event is about.
    public var id: String?
    /// Full job record for `job_started` / `job_finished`.
    public var job: JobInfo?
    /// Progress for `step`.
    public var progress: JobInfo.Progress?
    /// Path of the PNG for `preview`: the picture the model predicts at that step (the
    /// denoised estimate, README "step previews"), `outbox/<job>/steps/image-NNN-step-SSS.png`.
    public var preview: String?

    public init(kind: Kind, at: Date = Date(), id: String? = nil, job: JobInfo? = nil,
                progress: JobInfo.Progress? = nil, preview: String? = nil) {
        self.kind = kind.rawValue
        self.at = at
        self.id = id ?? job?.id
        self.job = job
        self.progress = progress
        self.preview = preview
    }

    /// The known kind, or nil for a kind this build does not know.
    public var knownKind: Kind? { Kind(rawValue: kind) }
}
