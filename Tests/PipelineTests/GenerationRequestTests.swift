import XCTest
@testable import Pipeline

final class GenerationRequestTests: XCTestCase {
    func testDefaultsAreDiffusersDefaults() {
        let r = GenerationRequest(prompt: "a red circle", width: 64, height: 64, steps: 20,
                                  sampler: .euler, guidance: 7.5, seed: 1)
        XCTAssertEqual(r.schedule, .default)
        XCTAssertEqual(r.rng, .cpu)
        XCTAssertEqual(r.negativePrompt, "")
    }
}
