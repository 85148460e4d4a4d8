import XCTest
import ControlProtocol
@testable import Daemon
#if canImport(Glibc)
import Glibc
#endif

/// Permission rules of the control socket, decided on the peer's uid.
final class ControlPolicyTests: XCTestCase {
    let policy = ControlPolicy(daemonUID: 990)

    func testReadVerbsAreOpenToAnyone() {
        for verb in Verb.allCases where verb.access == .read {
            XCTAssertNil(policy.check(verb, caller: 12345), verb.rawValue)
        }
    }

    func testJobVerbsForRootDaemonAndOwnerOnly() {
        for verb in [Verb.cancel, .hold, .release, .priority, .retry] {
            XCTAssertNil(policy.check(verb, caller: 0, jobOwner: 1000), "root may \(verb)")
            XCTAssertNil(policy.check(verb, caller: 990, jobOwner: 1000), "daemon may \(verb)")
            XCTAssertNil(policy.check(verb, caller: 1000, jobOwner: 1000), "owner may \(verb)")
            let denied = policy.check(verb, caller: 1001, jobOwner: 1000)
            XCTAssertEqual(denied?.status, .forbidden, "another user may not \(verb)")
            XCTAssertTrue(denied?.message.contains("uid 1001") ?? false, denied?.message ?? "")
            XCTAssertEqual(policy.check(verb, caller: 1001, jobOwner: nil)?.status, .forbidden)
        }
    }

    func testQueueWideVerbsForRootAndDaemonOnly() {
        for verb in [Verb.pause, .resume] {
            XCTAssertNil(policy.check(verb, caller: 0))
            XCTAssertNil(policy.check(verb, caller: 990))
            XCTAssertEqual(policy.check(verb, caller: 1000)?.status, .forbidden)
            XCTAssertEqual(policy.check(verb, caller: 1000, jobOwner: 1000)?.status, .forbidden,
                           "owning a job gives no queue-wide rights")
        }
    }

    // MARK: every caller against every kind of action

    /// A daemon uid that is neither this test process's real nor its effective uid, so a policy
    /// that asked `getuid()` or `geteuid()` instead of the uid it was given would fail below.
    static let daemon: UInt32 = (990...999).first { $0 != getuid() && $0 != geteuid() } ?? 990
    static let owner: UInt32 = 1000
    static let stranger: UInt32 = 1001

    func testTheDaemonUIDIsNotThisProcesssUID() {
        XCTAssertNotEqual(Self.daemon, getuid())
        XCTAssertNotEqual(Self.daemon, geteuid())
        XCTAssertFalse([0, Self.daemon].contains(Self.owner))
        XCTAssertFalse([0, Self.daemon, Self.owner].contains(Self.stranger))
    }

    func testDecisionForEachCallerAndAction() {
        let policy = ControlPolicy(daemonUID: Self.daemon)
        let read = ControlPolicy.Action.read
        let job = ControlPolicy.Action.changeJob(owner: Self.owner)
        let queue = ControlPolicy.Action.changeQueue
        let expected: [(caller: UInt32, who: String, read: ControlPolicy.Decision, job: ControlPolicy.Decision,
                        queue: ControlPolicy.Decision)] = [
            (0, "root", .allowed(.anyone), .allowed(.root), .allowed(.root)),
            (Self.daemon, "daemon user", .allowed(.anyone), .allowed(.daemonUser), .allowed(.daemonUser)),
            (Self.owner, "job owner", .allowed(.anyone), .allowed(.owner), .denied),
            (Self.stranger, "stranger", .allowed(.anyone), .denied, .denied),
        ]
        for row in expected {
            XCTAssertEqual(policy.decide(read, caller: row.caller), row.read, "\(row.who) reads")
            XCTAssertEqual(policy.decide(job, caller: row.caller), row.job, "\(row.who) changes a job")
            XCTAssertEqual(policy.decide(queue, caller: row.caller), row.queue, "\(row.who) pauses the queue")
            XCTAssertEqual(policy.mayRead(caller: row.caller), row.read.isAllowed, row.who)
            XCTAssertEqual(policy.mayChangeJob(owner: Self.owner, caller: row.caller), row.job.isAllowed, row.who)
            XCTAssertEqual(policy.mayChangeQueue(caller: row.caller), row.queue.isAllowed, row.who)
            // The socket's verbs are decided the same way.
            for verb in Verb.allCases {
                let decision: ControlPolicy.Decision
                switch verb.access {
                case .read: decision = row.read
                case .job: decision = row.job
                case .queueWide: decision = row.queue
                }
                let failure = policy.check(verb, caller: row.caller, jobOwner: Self.owner)
                XCTAssertEqual(failure == nil, decision.isAllowed, "\(row.who) \(verb.rawValue)")
                if let failure { XCTAssertEqual(failure.status, .forbidden) }
            }
        }
        XCTAssertEqual(policy.decide(.changeJob(owner: nil), caller: Self.stranger), .denied, "unknown owner")
        XCTAssertEqual(policy.decide(.changeJob(owner: nil), caller: Self.daemon), .allowed(.daemonUser))
    }

    func testVerbsMapToActions() {
        XCTAssertEqual(ControlPolicy.action(for: .status, jobOwner: 7), .read)
        XCTAssertEqual(ControlPolicy.action(for: .watch, jobOwner: nil), .read)
        XCTAssertEqual(ControlPolicy.action(for: .priority, jobOwner: 7), .changeJob(owner: 7))
        XCTAssertEqual(ControlPolicy.action(for: .pause, jobOwner: 7), .changeQueue)
    }

    func testThisProcesssPolicyIsItsEffectiveUID() {
        XCTAssertEqual(ControlPolicy.forThisProcess().daemonUID, geteuid())
    }
}
