import Foundation
import ControlProtocol

/// One entry of `diffusionctl history`: a finished job or a rejected job file. Encodes as
/// the job's or the rejection's own object (a rejection has `state` `rejected`).
public enum HistoryEntry: Encodable, Equatable {
    /// A job that reached a final state.
    case job(JobInfo)
    /// A job file the daemon refused.
    case rejection(RejectionInfo)

    /// The job's or the rejection's own object.
    public func encode(to encoder: Encoder) throws {
        switch self {
        case .job(let job): try job.encode(to: encoder)
        case .rejection(let rejection): try rejection.encode(to: encoder)
        }
    }
}
