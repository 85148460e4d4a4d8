import XCTest

/// Placeholder until this level's tests land; keeps the target buildable.
final class ModelsLinkTests: XCTestCase {
    func testTargetLinks() { XCTAssertEqual(1 + 1, 2) }
}
