import Foundation

/// Outcome of a request, carried in every `response` line as `status`.
public enum StatusCode: String, Codable, Sendable, CaseIterable {
    /// The request was carried out.
    case ok
    /// The request is malformed: unknown verb, missing or out-of-range argument, bad JSON,
    /// a line over the size bound, or an unsupported protocol version.
    case badRequest = "bad_request"
    /// The caller's uid may not do this (see the permission rules in `diffusionctl(1)`).
    case forbidden
    /// No job (or model) with that id exists.
    case notFound = "not_found"
    /// The job is in a state that does not allow this (e.g. release of a job that is not held).
    case conflict
    /// The daemon cannot serve this now (shutting down, too many connections, internal error).
    case unavailable

    /// Decodes unknown codes from a newer server as ``unavailable`` instead of failing.
    public init(from decoder: Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        self = StatusCode(rawValue: raw) ?? .unavailable
    }
}

/// A failed request: the status code to send back and a message for people.
///
/// Handlers throw this; the server turns it into a `response` line. Messages name the
/// thing that is wrong (job id, argument, state) and, where there is one, what to do.
public struct ControlFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public var status: StatusCode
    public var message: String

    public init(_ status: StatusCode, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.rawValue): \(message)" }

    public static func badRequest(_ message: String) -> ControlFailure { .init(.badRequest, message) }
    public static func forbidden(_ message: String) -> ControlFailure { .init(.forbidden, message) }
    public static func notFound(job id: String) -> ControlFailure { .init(.notFound, "no job with id '\(id)'") }
    public static func conflict(_ message: String) -> ControlFailure { .init(.conflict, message) }
    public static func unavailable(_ message: String) -> ControlFailure { .init(.unavailable, message) }
}
