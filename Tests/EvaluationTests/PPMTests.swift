import Foundation
import XCTest
import Pipeline
@testable import Evaluation

final class PPMTests: XCTestCase {
    func testRoundTripAndComments() throws {
        let image = RGBImage(width: 2, height: 1, pixels: [1, 2, 3, 250, 251, 252])
        XCTAssertEqual(try PPM.decode(PPM.encode(image)), image)
        let commented = Data("P6\n# made by hand\n2 1\n255\n".utf8) + Data([1, 2, 3, 250, 251, 252])
        XCTAssertEqual(try PPM.decode(commented), image)
    }

    func testRejectsTruncatedAndWrongMagic() {
        XCTAssertThrowsError(try PPM.decode(Data("P6\n2 1\n255\n".utf8) + Data([1, 2, 3])))
        XCTAssertThrowsError(try PPM.decode(Data("P3\n1 1\n255\n1 2 3".utf8)))
    }
}
