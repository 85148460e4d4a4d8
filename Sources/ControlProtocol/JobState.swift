/// Where a job is in its life: the one definition used by the daemon's queue (and its journal
/// on disk), the control protocol and `diffusionctl`.
///
/// The raw values are the wire format (`state` in ``JobInfo``, `counts` keys in
/// ``DaemonStatus``), the `status` of an outbox `result.json`, and the `state` persisted in the
/// daemon's queue journal: never rename a case. `done`, `failed` and `cancelled` are final.
public enum JobState: String, Codable, Sendable, CaseIterable {
    case queued, held, running, done, failed, cancelled

    /// Whether the job has finished (successfully or not) and left the queue.
    public var isFinal: Bool { self == .done || self == .failed || self == .cancelled }
}
