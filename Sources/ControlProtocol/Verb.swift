import Foundation

/// The verbs a client may send in a ``Request``. Only ever added to.
public enum Verb: String, Codable, Sendable, CaseIterable {
    /// Daemon summary: ``DaemonStatus`` in `response.daemon`.
    case status
    /// Job list, streamed as `item` lines with `job`; `all` includes finished jobs.
    case queue
    /// One job: ``JobInfo`` in `response.job`, with its parameters and images. Needs `id`
    /// (a job id, or a `name` that only one job has).
    case show
    /// Cancel a queued, held or running job. Needs `id`.
    case cancel
    /// Hold a queued job (it stays in the queue but is not started). Needs `id`.
    case hold
    /// Release a held job. Needs `id`.
    case release
    /// Set a job's priority. Needs `id` and `priority` (0–100).
    case priority
    /// Stop starting new jobs (the running one finishes).
    case pause
    /// Start jobs again after `pause`.
    case resume
    /// Queue a failed or cancelled job again. Needs `id`.
    case retry
    /// Finished jobs (done, failed, cancelled), newest first, streamed; optional `limit`;
    /// with `rejected`, the files in `outbox/rejected/` too, as `rejection` items.
    case history
    /// Live events, streamed as `event` lines until the client closes the connection.
    case watch
    /// Configured models, streamed as `item` lines with `model`.
    case models
    /// What the intake made of recent inbox files, streamed as `item` lines with `intake`
    /// (oldest first); `since` skips outcomes up to that sequence number. Protocol version 2.
    case intake

    /// Who may use a verb, enforced by the server from the peer's `SO_PEERCRED` uid.
    public enum Access: Sendable {
        /// Anyone who can connect to the socket.
        case read
        /// Root, the daemon's uid, and the uid that owns the job.
        case job
        /// Root and the daemon's uid.
        case queueWide
    }

    /// The permission class of this verb.
    public var access: Access {
        switch self {
        case .status, .queue, .show, .history, .watch, .models, .intake: return .read
        case .cancel, .hold, .release, .priority, .retry: return .job
        case .pause, .resume: return .queueWide
        }
    }

    /// Whether the server answers with a stream of `item` lines ended by an `end` line.
    public var isList: Bool { self == .queue || self == .history || self == .models || self == .intake }

    /// Whether the verb needs `id`.
    public var needsJobID: Bool { access == .job || self == .show }
}
