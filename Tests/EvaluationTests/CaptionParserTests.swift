import XCTest
@testable import Evaluation

final class CaptionParserTests: XCTestCase {
    func testTheIssuesTwoForms() throws {
        let one = try CaptionParser.parse("a red circle at the top left on a blue background")
        XCTAssertEqual(one, ExpectedScene(background: .blue, objects: [
            .init(color: .red, shape: .circle, position: GridPosition(row: 0, column: 0)),
        ]))
        let two = try CaptionParser.parse("a red circle on the left and a yellow square on the right, green background")
        XCTAssertEqual(two, ExpectedScene(background: .green, objects: [
            .init(color: .red, shape: .circle, position: GridPosition(row: 1, column: 0)),
            .init(color: .yellow, shape: .square, position: GridPosition(row: 1, column: 2)),
        ]))
    }

    func testBackgroundFirstSizeWordsAndCenter() throws {
        let s = try CaptionParser.parse("An orange background with a big white triangle in the middle")
        XCTAssertEqual(s.background, .orange)
        XCTAssertEqual(s.objects, [.init(color: .white, shape: .triangle, position: GridPosition(row: 1, column: 1))])
        let t = try CaptionParser.parse("black background, a purple square at the bottom")
        XCTAssertEqual(t.objects.first?.position, GridPosition(row: 2, column: 1))
    }

    func testObjectWithoutPositionOrShape() throws {
        let s = try CaptionParser.parse("a green square")
        XCTAssertNil(s.background)
        XCTAssertNil(s.objects.first?.position)
        XCTAssertThrowsError(try CaptionParser.parse("a red thing on a blue background")) { error in
            XCTAssertEqual((error as? CaptionParseError)?.wordIndex, 2)
        }
        XCTAssertThrowsError(try CaptionParser.parse("a blue background"))
    }

    func testNearestColourAndGridNames() {
        XCTAssertEqual(NamedColor.nearest(r: 250, g: 20, b: 20), .red)
        XCTAssertEqual(NamedColor.nearest(r: 230, g: 150, b: 60), .orange)
        XCTAssertEqual(NamedColor.nearest(r: 60, g: 60, b: 60), .black)
        XCTAssertEqual(GridPosition(index: 0).name, "top left")
        XCTAssertEqual(GridPosition(index: 4).name, "center")
        XCTAssertEqual(GridPosition(index: 7).name, "bottom")
    }
}
