import Foundation
import ControlProtocol

/// Who may do what over the control socket, decided on the peer's `SO_PEERCRED` uid:
/// - read-only verbs (status, queue, show, history, watch, models): anyone who can connect
///   (the socket's mode 0660 and its directory's mode decide who can);
/// - changes to one job (cancel, hold, release, priority, retry): root, the daemon's uid,
///   and the uid that owns the job;
/// - queue-wide changes (pause, resume): root and the daemon's uid.
public struct ControlPolicy: Sendable, Equatable {
    /// The uid the daemon runs as.
    public var daemonUID: UInt32

    public init(daemonUID: UInt32) {
        self.daemonUID = daemonUID
    }

    /// nil when `caller` may use `verb` (on a job owned by `jobOwner` for job verbs);
    /// otherwise the `forbidden` failure saying why.
    public func check(_ verb: Verb, caller: UInt32, jobOwner: UInt32? = nil) -> ControlFailure? {
        if caller == 0 || caller == daemonUID { return nil }
        switch verb.access {
        case .read:
            return nil
        case .job:
            if let owner = jobOwner, owner == caller { return nil }
            let ownerText = jobOwner.map { "user \(AccountNames.userName($0)) (uid \($0))" } ?? "another user"
            return .forbidden("\(verb.rawValue) is allowed only to the job's owner, root and the daemon's user; "
                + "the job belongs to \(ownerText), you are uid \(caller)")
        case .queueWide:
            return .forbidden("\(verb.rawValue) is allowed only to root and the daemon's user "
                + "(\(AccountNames.userName(daemonUID)), uid \(daemonUID)); you are uid \(caller)")
        }
    }
}
