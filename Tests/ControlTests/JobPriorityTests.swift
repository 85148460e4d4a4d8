import XCTest
import ControlProtocol

/// The one definition of priority levels, their range, parsing and error texts.
final class JobPriorityTests: XCTestCase {
    func testNamedLevelsAndRange() {
        XCTAssertEqual(JobPriority.levels.map(\.name), ["low", "normal", "high", "urgent"])
        XCTAssertEqual(JobPriority.levels.map(\.priority.rawValue), [25, 50, 75, 100])
        XCTAssertEqual(JobPriority.range, 0...100)
        XCTAssertEqual(JobPriority.named("high"), .high)
        XCTAssertNil(JobPriority.named("High"), "job files spell names in lower case")
        XCTAssertEqual(JobPriority.high.name, "high")
        XCTAssertNil(JobPriority(rawValue: 74)?.name)
        XCTAssertLessThan(JobPriority.low, JobPriority.urgent)
    }

    func testOnlyNumbersWithinTheRangeAreValid() {
        XCTAssertEqual(JobPriority(rawValue: 0)?.rawValue, 0)
        XCTAssertEqual(JobPriority(rawValue: 100)?.rawValue, 100)
        XCTAssertNil(JobPriority(rawValue: -1))
        XCTAssertNil(JobPriority(rawValue: 101))
    }

    func testParsingACommandLineLevel() {
        for (text, expected) in [("low", 25), ("URGENT", 100), ("Normal", 50), ("0", 0), ("99", 99), ("+7", 7)] {
            XCTAssertEqual(JobPriority(parsing: text)?.rawValue, expected, text)
        }
        for text in ["", "101", "-1", "max", "5.5", " 5"] {
            XCTAssertNil(JobPriority(parsing: text), text)
        }
    }

    func testErrorTexts() {
        XCTAssertEqual(JobPriority.usageText, "0-100 or low|normal|high|urgent")
        XCTAssertEqual(JobPriority.validValuesText, "low, normal, high, urgent, or 0 to 100")
        XCTAssertEqual(JobPriority.invalidLevelMessage("max"), "priority level must be 0-100 or low|normal|high|urgent, got 'max'")
        XCTAssertEqual(JobPriority.outOfRangeMessage(101), "priority must be 0–100, got 101")
        XCTAssertEqual(JobPriority.missingLevelMessage, "priority needs a level (0–100)")
    }
}
