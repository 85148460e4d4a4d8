import ControlClient
import XCTest

/// Permission errors advise joining the socket's group only when that is a service's group;
/// a root-owned socket (a daemon run by hand) gets advice that works.
final class AccessAdviceTests: XCTestCase {
    func testServiceGroupIsToBeJoined() {
        XCTAssertEqual(ClientError.permissionDenied(socket: "/run/diffusiond/control.sock", group: "diffusiond").description,
                       "permission denied on /run/diffusiond/control.sock; join the group 'diffusiond' (e.g. `sudo usermod -aG diffusiond $USER`, then log in again)")
    }

    func testRootGroupIsNotToBeJoined() {
        let text = ClientError.permissionDenied(socket: "/tmp/s.sock", group: "root").description
        XCTAssertTrue(text.hasPrefix("permission denied on /tmp/s.sock; the diffusiond control socket belongs to group 'root'"), text)
        XCTAssertTrue(text.contains("run diffusionctl as root or as the daemon's user"), text)
        XCTAssertFalse(text.contains("join the group"), text)
    }

    func testUnknownGroupAsksAnAdministrator() {
        XCTAssertEqual(ClientError.permissionDenied(socket: "/s", group: nil).description,
                       "permission denied on /s; ask an administrator for access to the diffusiond control socket")
    }
}
