import XCTest
import ControlProtocol
@testable import Daemon

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
}
