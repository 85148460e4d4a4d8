import Foundation
import FuzzTargets
import XCTest

/// Every committed fuzzing seed and every input that once crashed a parser
/// (Tests/FuzzCorpus/TARGET) runs through its target in-process, as `make fuzz` would: a
/// crash or a broken invariant ends this test process, so a regression cannot pass.
final class CorpusReplayTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus")

    func testEveryTargetHasSeedsAndRunsThemAll() throws {
        for target in FuzzTarget.allCases {
            let folder = Self.corpus.appendingPathComponent(target.rawValue)
            let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
            XCTAssertGreaterThanOrEqual(names.count, 2, "\(target.rawValue): too few seeds in \(folder.path)")
            for name in names {
                let data = try Data(contentsOf: folder.appendingPathComponent(name))
                target.run([UInt8](data))
            }
        }
    }

    func testTargetNamesAreTheMakefilesList() throws {
        let makefile = try String(contentsOf: Self.corpus.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Makefile"), encoding: .utf8)
        let line = try XCTUnwrap(makefile.split(separator: "\n").first { $0.hasPrefix("FUZZ_TARGETS") })
        let listed = line.split(separator: "=", maxSplits: 1)[1].split(separator: " ").map(String.init)
        XCTAssertEqual(listed, FuzzTarget.allCases.map(\.rawValue))
    }
}
