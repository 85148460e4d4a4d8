import Foundation

/// Errors of the wire layer: framing, JSON, sockets.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A line exceeded the size bound (`limit` bytes, newline excluded).
    case lineTooLong(limit: Int)
    /// The peer closed the connection in the middle of a line.
    case truncatedLine
    /// A line was not the JSON expected; `detail` says what the decoder saw.
    case invalidJSON(String)
    /// A line was not valid UTF-8.
    case notUTF8
    /// A receive timed out (SO_RCVTIMEO).
    case timedOut
    /// A line was begun but not finished within the channel's line time limit (seconds).
    case lineTimedOut(seconds: Double)
    /// A system call failed: its name and errno.
    case system(call: String, errno: Int32)
    /// The socket path does not fit in `sockaddr_un.sun_path` (108 bytes with the NUL).
    case pathTooLong(String)

    public var description: String {
        switch self {
        case .lineTooLong(let limit): return "line longer than \(limit) bytes"
        case .truncatedLine: return "connection closed in the middle of a line"
        case .invalidJSON(let detail): return "invalid JSON: \(detail)"
        case .notUTF8: return "line is not valid UTF-8"
        case .timedOut: return "timed out waiting for the peer"
        case .lineTimedOut(let seconds): return "a line was not finished within \(seconds) s"
        case .system(let call, let code): return "\(call): \(String(cString: strerror(code)))"
        case .pathTooLong(let path): return "socket path too long (at most 107 bytes): \(path)"
        }
    }
}

/// JSON encoding and decoding of single protocol lines (dates as ISO 8601 UTC with
/// milliseconds, e.g. `2026-11-25T13:30:00.250Z`; keys sorted).
public enum WireCodec {
    /// Writes dates with milliseconds: `watch` measures steps per second from event times.
    static let dateEncoding = JSONEncoder.DateEncodingStrategy.custom { date, encoder in
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var container = encoder.singleValueContainer()
        try container.encode(formatter.string(from: date))
    }

    /// Reads ISO 8601 dates with or without fractional seconds.
    static let dateDecoding = JSONDecoder.DateDecodingStrategy.custom { decoder in
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not an ISO 8601 date")
    }

    /// Encodes `value` as one JSON line, `\n` included.
    public static func encodeLine<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = dateEncoding
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(value)
        data.append(0x0A)
        return data
    }

    /// Encodes `value` as pretty JSON for people and scripts (`diffusionctl --json`), no newline.
    public static func encodePretty<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = dateEncoding
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        return try encoder.encode(value)
    }

    /// Decodes one line (without its newline). Unknown fields are ignored.
    public static func decode<T: Decodable>(_ type: T.Type, from line: Data) throws -> T {
        guard String(data: line, encoding: .utf8) != nil else { throw WireError.notUTF8 }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = dateDecoding
        do {
            return try decoder.decode(type, from: line)
        } catch let error as DecodingError {
            throw WireError.invalidJSON(describe(error))
        } catch {
            throw WireError.invalidJSON("\(error)")
        }
    }

    /// A one-line description of a decoding error naming the field path.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.isEmpty ? "top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): missing \(type) value"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): missing field"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
