import Foundation
import ControlProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Who may do what: the one authority for every permission check in the daemon, both at the
/// control socket (decided on the peer's `SO_PEERCRED` uid) and in the queue itself.
/// - reading (status, queue, show, history, watch, models): anyone who can connect
///   (the socket's mode 0660 and its directory's mode decide who can);
/// - changes to one job (cancel, hold, release, priority, retry): root, the daemon's user,
///   and the uid that owns the job;
/// - queue-wide changes (pause, resume): root and the daemon's user.
///
/// "The daemon's user" is one uid, ``daemonUID``, fixed when the daemon starts
/// (``forThisProcess()``: the effective uid, the identity that owns the files the daemon
/// writes) and handed to the queue and the control server.
public struct ControlPolicy: Sendable, Equatable {
    /// The uid the daemon runs as.
    public let daemonUID: UInt32

    public init(daemonUID: UInt32) {
        self.daemonUID = daemonUID
    }

    /// The policy of this process: its effective uid is the daemon's user. The daemon calls this
    /// once at start-up and passes the result on.
    public static func forThisProcess() -> ControlPolicy {
        ControlPolicy(daemonUID: geteuid())
    }

    /// What a caller wants to do.
    public enum Action: Equatable, Sendable {
        /// Look at the daemon, its queue, jobs, history, events or models.
        case read
        /// Change one job, owned by `owner` (`nil` when the job's owner is not known).
        case changeJob(owner: UInt32?)
        /// Change the whole queue: pause or resume.
        case changeQueue
    }

    /// Why a caller may act.
    public enum Grounds: Equatable, Sendable {
        /// Reading is open to anyone who reached the socket.
        case anyone
        /// The caller is root (uid 0).
        case root
        /// The caller is the daemon's user.
        case daemonUser
        /// The caller owns the job.
        case owner
    }

    /// The answer to "may this caller do that".
    public enum Decision: Equatable, Sendable {
        case allowed(Grounds)
        case denied

        /// Whether the action may go ahead.
        public var isAllowed: Bool { self != .denied }
    }

    /// Decides whether `caller` may carry out `action`.
    public func decide(_ action: Action, caller: UInt32) -> Decision {
        if action == .read { return .allowed(.anyone) }
        if caller == 0 { return .allowed(.root) }
        if caller == daemonUID { return .allowed(.daemonUser) }
        if case .changeJob(let owner?) = action, owner == caller { return .allowed(.owner) }
        return .denied
    }

    /// Whether `caller` may read: always, once connected.
    public func mayRead(caller: UInt32) -> Bool { decide(.read, caller: caller).isAllowed }

    /// Whether `caller` may change a job owned by `owner`: root, the daemon's user, the owner.
    public func mayChangeJob(owner: UInt32, caller: UInt32) -> Bool {
        decide(.changeJob(owner: owner), caller: caller).isAllowed
    }

    /// Whether `caller` may pause or resume the queue: root or the daemon's user.
    public func mayChangeQueue(caller: UInt32) -> Bool { decide(.changeQueue, caller: caller).isAllowed }

    /// The action a control verb is (`jobOwner` for job verbs).
    public static func action(for verb: Verb, jobOwner: UInt32?) -> Action {
        switch verb.access {
        case .read: return .read
        case .job: return .changeJob(owner: jobOwner)
        case .queueWide: return .changeQueue
        }
    }

    /// nil when `caller` may use `verb` (on a job owned by `jobOwner` for job verbs);
    /// otherwise the `forbidden` failure saying why.
    public func check(_ verb: Verb, caller: UInt32, jobOwner: UInt32? = nil) -> ControlFailure? {
        guard decide(ControlPolicy.action(for: verb, jobOwner: jobOwner), caller: caller) == .denied else { return nil }
        switch verb.access {
        case .read:
            return nil
        case .job:
            let ownerText = jobOwner.map { "user \(AccountNames.userName($0)) (uid \($0))" } ?? "another user"
            return .forbidden("\(verb.rawValue) is allowed only to the job's owner, root and the daemon's user; "
                + "the job belongs to \(ownerText), you are uid \(caller)")
        case .queueWide:
            return .forbidden("\(verb.rawValue) is allowed only to root and the daemon's user "
                + "(\(AccountNames.userName(daemonUID)), uid \(daemonUID)); you are uid \(caller)")
        }
    }
}
