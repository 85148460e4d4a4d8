import Foundation
import Jobs
import XCTest

/// Every file of Tests/Fixtures/bad-jobs must be refused with exactly the one-line reason
/// recorded in EXPECTED.tsv (file, line, column, field, message).
final class BadJobCorpusTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/bad-jobs")

    static func expectations() throws -> [(String, String)] {
        let text = try String(contentsOf: corpus.appendingPathComponent("EXPECTED.tsv"), encoding: .utf8)
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            let parts = line.split(separator: "\t", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }
    }

    func testCorpusHasAtLeast25Files() throws {
        let expected = try Self.expectations()
        XCTAssertGreaterThanOrEqual(expected.count, 25)
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path).filter { $0 != "EXPECTED.tsv" }
        XCTAssertEqual(Set(files), Set(expected.map(\.0)), "every corpus file has an expectation and vice versa")
    }

    func testEveryBadFileGivesItsOneLineReason() throws {
        let parser = JobFileParser(knownModels: ["tiny"], nativeSize: JobFileParserTests.nativeSizes)
        for (file, reason) in try Self.expectations() {
            let bytes = [UInt8](try Data(contentsOf: Self.corpus.appendingPathComponent(file)))
            do {
                let jobs = try parser.parse(bytes: bytes, file: file)
                XCTFail("\(file) was accepted: \(jobs)")
            } catch let error as SourceError {
                XCTAssertEqual(error.description, reason, file)
                XCTAssertFalse(error.description.contains("\n"), file)
                XCTAssertTrue(error.description.hasPrefix("\(file):\(error.line):\(error.column): "), file)
            }
        }
    }

    func testOversizedFileIsRefusedBeforeParsing() {
        var limits = JobLimits()
        limits.maxFileSize = 1000
        let bytes = Array("prompt: a red circle\n".utf8) + Array(repeating: UInt8(ascii: "#"), count: 2000)
        XCTAssertThrowsError(try JobFileParser(limits: limits).parse(bytes: bytes, file: "big.yaml")) { error in
            XCTAssertEqual("\(error)", "big.yaml:0:0: file is 2021 bytes, more than the limit of 1000")
        }
    }

    func testOverlongPromptNamesItsLimit() {
        var limits = JobLimits()
        limits.maxPromptBytes = 100
        let bytes = Array(("prompt: " + String(repeating: "a", count: 101) + "\n").utf8)
        XCTAssertThrowsError(try JobFileParser(limits: limits).parse(bytes: bytes, file: "long.yaml")) { error in
            XCTAssertEqual("\(error)", "long.yaml:1:9: value is 101 bytes long, more than the limit of 100")
        }
    }

    func testTooManyDocuments() {
        var limits = JobLimits()
        limits.maxJobsPerFile = 3
        let text = (0..<4).map { "prompt: job \($0)\n" }.joined(separator: "---\n")
        XCTAssertThrowsError(try JobFileParser(limits: limits, nativeSize: JobFileParserTests.nativeSizes).parse(bytes: Array(text.utf8), file: "many.yaml")) { error in
            XCTAssertEqual("\(error)", "many.yaml:6:1: more than 3 jobs in one file (limits.max_jobs_per_file)")
        }
    }

    func testEventStreamStopsAtDepthLimit() throws {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        let stream = try YAMLEventStream(bytes: Array(deep.utf8), file: "deep.yaml", limits: YAMLSafetyLimits(maxDepth: 4))
        var events = 0
        XCTAssertThrowsError(try { while try stream.next().0 != .streamEnd { events += 1 } }()) { error in
            XCTAssertEqual("\(error)", "deep.yaml:1:5: nesting deeper than 4 levels")
        }
        XCTAssertEqual(events, 5, "document start and four sequence starts, then the refusal")
    }

    func testOverlongUTF8FormsAreRefused() {
        // 0xE0 0x80 0xAF is an overlong encoding of '/'.
        let bytes = Array("prompt: a".utf8) + [0xE0, 0x80, 0xAF] + [0x0A]
        XCTAssertThrowsError(try JobFileParser().parse(bytes: bytes, file: "o.yaml")) { error in
            XCTAssertEqual("\(error)", "o.yaml:1:10: not UTF-8 text (invalid sequence at byte 0xe0)")
        }
    }
}
