import Foundation
import Jobs
import XCTest

/// Every example under etc/jobs/ is a job file the parser accepts, so the examples cannot
/// drift from the schema (`man 5 diffusion-job`).
final class ExampleJobsTests: XCTestCase {
    func testEveryExampleParses() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("etc/jobs")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertTrue(names.contains("img2img.yaml"), "\(names)")
        var parser = JobFileParser(defaults: {
            var d = JobDefaults()
            d.width = 512
            d.height = 512
            return d
        }())
        parser.inputBase = folder
        for name in names {
            let bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))
            XCTAssertNoThrow(try parser.parse(bytes: bytes, file: name), name)
        }
    }
}
