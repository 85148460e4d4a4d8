import Foundation

/// A job file the daemon refused: it lies in the outbox's `rejected/` folder with a `.error`
/// beside it. Sent as `rejection` in `history` items (when the request asks for `rejected`)
/// and inside an ``IntakeOutcome``.
public struct RejectionInfo: Codable, Equatable, Sendable {
    /// Always `rejected`, so that `history --json` entries all have a `state`.
    public var state: String = "rejected"
    /// The file's name in `rejected/` (its inbox name, or `NAME.N` when that was taken).
    public var file: String
    /// Full path of the rejected file; its reason is in `PATH.error`.
    public var path: String
    /// The `.error` line: `file:line:column: field '…': what is wrong`.
    public var reason: String
    /// When it was rejected.
    public var time: Date

    public init(file: String, path: String, reason: String, time: Date) {
        self.file = file
        self.path = path
        self.reason = reason
        self.time = time
    }
}

/// What the daemon's intake made of one file it took from the inbox: its jobs, or the
/// rejection. Sent as `intake` in the items of the `intake` verb; `diffusionctl submit`
/// waits for the outcome of the files it copied.
public struct IntakeOutcome: Codable, Equatable, Sendable {
    /// One job made from a document of the file.
    public struct Job: Codable, Equatable, Sendable {
        public var id: String
        /// The job's `name`, or the file's name when it has none.
        public var name: String
        /// 1-based index of the YAML document.
        public var document: Int

        public init(id: String, name: String, document: Int) {
            self.id = id
            self.name = name
            self.document = document
        }
    }

    /// Increases by one per file taken in since the daemon started (`intake_sequence` in
    /// ``DaemonStatus`` is the latest).
    public var sequence: Int
    /// The file's name in the inbox.
    public var file: String
    /// Inode number of the file (renames into and out of the inbox keep it), which tells a
    /// file from an earlier one of the same name.
    public var inode: UInt64?
    /// When the intake decided.
    public var time: Date
    /// The jobs queued from the file, in document order; absent when it was rejected.
    public var jobs: [Job]?
    /// Why the file was rejected; absent when it was accepted.
    public var rejection: RejectionInfo?

    public init(sequence: Int, file: String, inode: UInt64?, time: Date, jobs: [Job]? = nil,
                rejection: RejectionInfo? = nil) {
        self.sequence = sequence
        self.file = file
        self.inode = inode
        self.time = time
        self.jobs = jobs
        self.rejection = rejection
    }
}
