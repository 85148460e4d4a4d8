import Foundation

/// First line a client sends.
public struct ClientHello: Codable, Equatable, Sendable {
    /// Always `hello`.
    public var type: String = "hello"
    /// Highest protocol version the client speaks.
    public var version: Int
    /// Free-form client name for logs (e.g. `diffusionctl 0.1`).
    public var client: String?

    public init(version: Int = ControlWire.version, client: String? = nil) {
        self.version = version
        self.client = client
    }
}

/// A request line sent after the handshake.
public struct Request: Codable, Equatable, Sendable {
    /// Always `request`.
    public var type: String = "request"
    /// Raw verb (see ``Verb``); kept as text so the server can answer unknown verbs.
    public var verb: String
    /// Job id for job verbs and `show` (which also take a job's unique `name`).
    public var id: String?
    /// `queue`: include finished jobs.
    public var all: Bool?
    /// `priority`: new priority 0–100.
    public var priority: Int?
    /// `history`: at most this many entries.
    public var limit: Int?
    /// `history`: list files in the outbox's `rejected/` folder too (as `rejection` items).
    public var rejected: Bool?
    /// `intake`: only outcomes with a `sequence` above this.
    public var since: Int?

    public init(verb: Verb, id: String? = nil, all: Bool? = nil, priority: Int? = nil, limit: Int? = nil,
                rejected: Bool? = nil, since: Int? = nil) {
        self.init(rawVerb: verb.rawValue, id: id, all: all, priority: priority, limit: limit, rejected: rejected, since: since)
    }

    public init(rawVerb: String, id: String? = nil, all: Bool? = nil, priority: Int? = nil, limit: Int? = nil,
                rejected: Bool? = nil, since: Int? = nil) {
        self.verb = rawVerb
        self.id = id
        self.all = all
        self.priority = priority
        self.limit = limit
        self.rejected = rejected
        self.since = since
    }
}

/// The `type` of a line the server sends.
public enum ServerMessageType: String, Sendable {
    /// Handshake answer: `version`, `server`, and the peer's `uid` as the server saw it.
    case hello
    /// Answer to one request: `status`, `message`, and `daemon` or `job` when relevant.
    case response
    /// One element of a list: `job`, `model`, `rejection` (`history`) or `intake`.
    case item
    /// End of a list: `count` is the number of `item` lines sent.
    case end
    /// A live event for `watch`: `event`.
    case event
}

/// Any line the server sends. Every payload is optional so that clients decode lines from
/// newer servers (unknown fields are ignored, unknown types can be skipped).
public struct ServerMessage: Codable, Equatable, Sendable {
    /// Raw type (see ``ServerMessageType``).
    public var type: String
    /// `hello`: the version both sides will speak.
    public var version: Int?
    /// `hello`: server name and version.
    public var server: String?
    /// `hello`: the uid the server saw for this connection (SO_PEERCRED).
    public var uid: UInt32?
    /// `response`: outcome.
    public var status: StatusCode?
    /// `response`: text for people (always set when `status` is not `ok`).
    public var message: String?
    /// `response` to `status`.
    public var daemon: DaemonStatus?
    /// `response` to `show` and job verbs (the record after the change), or an `item`.
    public var job: JobInfo?
    /// `item` of `models`.
    public var model: ModelInfo?
    /// `end`: number of items sent.
    public var count: Int?
    /// `event`.
    public var event: ControlEvent?
    /// `item` of `history` for a rejected file.
    public var rejection: RejectionInfo?
    /// `item` of `intake`.
    public var intake: IntakeOutcome?

    public init(type: ServerMessageType, version: Int? = nil, server: String? = nil, uid: UInt32? = nil,
                status: StatusCode? = nil, message: String? = nil, daemon: DaemonStatus? = nil,
                job: JobInfo? = nil, model: ModelInfo? = nil, count: Int? = nil, event: ControlEvent? = nil,
                rejection: RejectionInfo? = nil, intake: IntakeOutcome? = nil) {
        self.type = type.rawValue
        self.version = version
        self.server = server
        self.uid = uid
        self.status = status
        self.message = message
        self.daemon = daemon
        self.job = job
        self.model = model
        self.count = count
        self.event = event
        self.rejection = rejection
        self.intake = intake
    }

    /// The known type, or nil for a type this build does not know.
    public var knownType: ServerMessageType? { ServerMessageType(rawValue: type) }

    /// A `response` line.
    public static func response(_ status: StatusCode, _ message: String? = nil, daemon: DaemonStatus? = nil,
                                job: JobInfo? = nil) -> ServerMessage {
        ServerMessage(type: .response, status: status, message: message, daemon: daemon, job: job)
    }

    /// A `response` line for a failure.
    public static func failure(_ failure: ControlFailure) -> ServerMessage {
        .response(failure.status, failure.message)
    }
}

/// Only the `type` of a line, to pick the struct to decode.
public struct MessageEnvelope: Decodable, Sendable {
    public var type: String?
}
