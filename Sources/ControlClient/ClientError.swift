#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ControlProtocol

/// Why a client call failed. ``exitCode`` maps it to sysexits(3).
public enum ClientError: Error, Equatable, CustomStringConvertible {
    /// Nobody listens on the socket (missing file or connection refused).
    case notRunning(socket: String, reason: String)
    /// The socket (or its directory) refused us: not in the socket's group.
    case permissionDenied(socket: String, group: String?)
    /// The server answered with a non-ok status.
    case server(ControlFailure)
    /// The server broke the protocol (bad line, unexpected type, wrong count).
    case protocolViolation(String)
    /// Reading or writing the socket failed.
    case io(String)

    public var description: String {
        switch self {
        case .notRunning(let socket, let reason):
            return "diffusiond is not running (no answer on \(socket): \(reason)); start it with `systemctl start diffusiond` or pass --socket"
        case .permissionDenied(let socket, let group):
            return "permission denied on \(socket); " + AccessAdvice.text(group: group, path: "the diffusiond control socket")
        case .server(let failure):
            return failure.message
        case .protocolViolation(let detail):
            return "protocol error: \(detail)"
        case .io(let detail):
            return detail
        }
    }

    /// sysexits(3) code: 69 unavailable, 77 no permission, 64 bad request, 66 no such job,
    /// 65 conflict (wrong state), 74 I/O, 76 protocol.
    public var exitCode: Int32 {
        switch self {
        case .notRunning: return SysExits.unavailable
        case .permissionDenied: return SysExits.noPermission
        case .server(let failure):
            switch failure.status {
            case .ok: return SysExits.ok
            case .forbidden: return SysExits.noPermission
            case .badRequest: return SysExits.usage
            case .notFound: return SysExits.noInput
            case .conflict: return SysExits.dataError
            case .unavailable: return SysExits.unavailable
            }
        case .protocolViolation: return SysExits.protocolError
        case .io: return SysExits.ioError
        }
    }
}
