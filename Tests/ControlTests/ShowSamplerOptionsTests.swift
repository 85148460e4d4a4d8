import ControlProtocol
import Foundation
import XCTest
@testable import ControlClient

/// `diffusionctl show` lists a job's `eta` and `restart` segment after its sampler, and
/// nothing for a job without them.
final class ShowSamplerOptionsTests: XCTestCase {
    func lines(_ parameters: JobParameters) -> [String] {
        let job = JobInfo(id: "000001", name: "j", state: .queued, priority: 50, owner: .init(uid: 1000, user: "u"),
                          model: "shapes", submitted: Date(timeIntervalSince1970: 0), prompt: "x", steps: 35,
                          parameters: parameters)
        return CtlFormatting.parameterLines(job).map { "\($0.0): \($0.1)" }
    }

    func testEtaAndRestartFollowTheSampler() {
        var p = JobParameters(prompt: "x", model: "shapes")
        p.sampler = "euler_a"
        p.eta = 1.75
        p.restart = [5, 2, 0.5, 2]
        p.schedule = "default"
        XCTAssertEqual(lines(p), ["model: shapes", "prompt: x", "sampler: euler_a", "eta: 1.75", "restart: [5, 2, 0.5, 2]",
                                  "schedule: default"])
        p.eta = nil
        p.restart = nil
        XCTAssertEqual(lines(p), ["model: shapes", "prompt: x", "sampler: euler_a", "schedule: default"])
    }

    /// A reply's restart value outside any int prints as a number; it must not trap.
    func testRestartValuesBeyondIntPrintAsNumbers() {
        var p = JobParameters(prompt: "x", model: "shapes")
        p.restart = [5, 2, 0.25, 1e300]
        XCTAssertEqual(lines(p), ["model: shapes", "prompt: x", "restart: [5, 2, 0.25, 1e+300]"])
    }
}
