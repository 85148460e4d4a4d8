import XCTest
@testable import Sampling

final class SamplerKindTests: XCTestCase {
    func testJobFileNamesMapToSamplers() {
        XCTAssertEqual(SamplerKind(rawValue: "euler_a"), .eulerAncestral)
        XCTAssertEqual(SamplerKind(rawValue: "dpm++2m_sde"), .dpmpp2mSDE)
        XCTAssertNil(SamplerKind(rawValue: "Euler a"))
        XCTAssertEqual(SamplerKind.validNames, "euler, euler_a, heun, dpm++2m, dpm++2m_sde, ddim, ddpm, lms, lcm, tcd")
    }

    func testNamesAreUniqueAndRoundTrip() throws {
        let kinds = SamplerKind.allCases
        XCTAssertEqual(Set(kinds.map(\.rawValue)).count, kinds.count)
        XCTAssertEqual(Set(kinds.map(\.automatic1111Name)).count, kinds.count)
        for kind in kinds {
            XCTAssertEqual(SamplerKind(rawValue: kind.rawValue), kind)
            let data = try JSONEncoder().encode([kind])
            XCTAssertEqual(String(decoding: data, as: UTF8.self), "[\"\(kind.rawValue)\"]")
            XCTAssertEqual(try JSONDecoder().decode([SamplerKind].self, from: data), [kind])
        }
        XCTAssertThrowsError(try JSONDecoder().decode([SamplerKind].self, from: Data(#"["Euler a"]"#.utf8)))
    }

    func testAutomatic1111Names() {
        let names = SamplerKind.allCases.map(\.automatic1111Name)
        XCTAssertEqual(names, ["Euler", "Euler a", "Heun", "DPM++ 2M", "DPM++ 2M SDE", "DDIM", "DDPM", "LMS", "LCM", "TCD"])
    }

    func testEachDefinitionBuildsItsOwnKind() throws {
        for kind in SamplerKind.allCases {
            let settings = try SamplerSettings(sampler: kind, config: SchedulerConfig())
            let sampler = try makeSampler(settings, steps: 4, elementCount: 8)
            XCTAssertEqual(sampler.kind, kind)
            XCTAssertTrue(kind.definition.diffusersClass.hasSuffix("Scheduler"), kind.definition.diffusersClass)
        }
    }
}
