import ControlProtocol
import Foundation
import Jobs

/// Everything the service remembers about one job; persisted in the queue journal.
public struct JobRecord: Codable, Equatable, Sendable {
    /// Six-digit (or longer) job number, e.g. `000042`.
    public var id: String
    /// Submission order; FIFO within a priority.
    public var number: Int
    public var spec: JobSpec
    /// Name of the file as dropped in the inbox.
    public var sourceFile: String
    /// Owner uid of the dropped file.
    public var owner: UInt32
    /// Seconds since 1970.
    public var submitted: Double
    public var state: JobState
    /// How many times a run started (a crash during a run leaves it counted).
    public var attempts: Int
    /// Folder under the outbox: `<id>` or `<id>-<name>`.
    public var folder: String
    public var started: Double?
    public var finished: Double?
    public var error: String?
    /// Model name the job runs on (its own, or the default at submission).
    public var model: String

    /// Current priority (0–100); starts as the job file's.
    public var priority: Int {
        get { spec.priority }
        set { spec.priority = newValue }
    }

    /// The name people see (`name` in `queue`, found by `show NAME`): the job's `name`, else
    /// the job file's name.
    public var displayName: String { spec.name ?? sourceFile }

    public static func id(number: Int) -> String { String(format: "%06d", number) }

    public static func folder(id: String, name: String?) -> String {
        name.map { "\(id)-\($0)" } ?? id
    }
}

/// Live progress of the running job (not persisted).
public struct JobProgress: Sendable, Equatable, Codable {
    public var id: String
    /// 0-based image being generated.
    public var image: Int
    public var images: Int
    public var step: Int
    public var steps: Int
    public var started: Double
    /// The step preview written at this step (its path in the outbox), if any.
    public var preview: String? = nil
}
