import Foundation
import ControlProtocol

/// The queue operations the control server needs; the daemon implements it.
///
/// Contract:
/// - Methods are called from the server's connection threads, concurrently: implementations
///   synchronise their own state.
/// - Failures are thrown as ``ControlFailure`` with the status code that fits
///   (`not_found` for an unknown id, `conflict` for a state that does not allow the change,
///   `bad_request` for an argument the handler rejects, `unavailable` when shutting down).
///   Any other error is reported to the client as `unavailable` with its description.
/// - Permissions are checked by the server (``ControlPolicy``) before a changing method is
///   called; `caller` is passed for logging and for the record (e.g. "cancelled by uid 1000").
/// - Changing methods return the job's record after the change.
public protocol ControlHandler: AnyObject {
    /// Daemon summary for `status`.
    func status() throws -> DaemonStatus
    /// Jobs not yet finished (running first, then queued and held in start order); with
    /// `all`, finished jobs the daemon still remembers follow.
    func list(all: Bool) throws -> [JobInfo]
    /// One job, finished or not, found by id or else by a `name` only one job has (an
    /// ambiguous name is a `bad_request` that lists the matching ids).
    func show(id: String) throws -> JobInfo
    /// Cancels a queued, held or running job (a running one stops between steps).
    func cancel(id: String, caller: UInt32) throws -> JobInfo
    /// Holds a queued job (holding a held job may succeed without change).
    func hold(id: String, caller: UInt32) throws -> JobInfo
    /// Releases a held job back to `queued` (releasing a queued job may succeed without change).
    func release(id: String, caller: UInt32) throws -> JobInfo
    /// Sets the priority of a queued or held job.
    func setPriority(id: String, priority: JobPriority, caller: UInt32) throws -> JobInfo
    /// Queues a failed or cancelled job again.
    func retry(id: String, caller: UInt32) throws -> JobInfo
    /// Stops starting new jobs.
    func pause(caller: UInt32) throws
    /// Starts jobs again.
    func resume(caller: UInt32) throws
    /// Finished jobs, newest first, at most `limit` when given.
    func history(limit: Int?) throws -> [JobInfo]
    /// Configured models.
    func models() throws -> [ModelInfo]
    /// Files in the outbox's `rejected/` folder, newest first, at most `limit` when given.
    func rejections(limit: Int?) throws -> [RejectionInfo]
    /// What the intake made of recent inbox files, oldest first, after sequence `since`.
    func intake(since: Int?) throws -> [IntakeOutcome]
    /// Where the daemon publishes live events (`watch`). The daemon owns and feeds it.
    var events: ControlEventHub { get }
}

extension ControlHandler {
    /// A handler without an outbox has no rejected files.
    public func rejections(limit: Int?) throws -> [RejectionInfo] { [] }
    /// A handler without an intake reports none.
    public func intake(since: Int?) throws -> [IntakeOutcome] { [] }
}
