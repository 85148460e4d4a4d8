import XCTest
@testable import Sampling

final class SamplerKindTests: XCTestCase {
    func testJobFileNamesMapToSamplers() {
        XCTAssertEqual(SamplerKind(rawValue: "euler_a"), .eulerAncestral)
        XCTAssertEqual(SamplerKind(rawValue: "dpm++2m_sde"), .dpmpp2mSDE)
        XCTAssertNil(SamplerKind(rawValue: "Euler a"))
        XCTAssertEqual(SamplerKind.validNames, "euler, euler_a, heun, dpm++2m, dpm++2m_sde, ddim, ddpm, lms, lcm")
    }
}
