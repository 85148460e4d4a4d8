import Daemon
import Foundation
import XCTest

/// Issue 21, black box: `diffusiond --oneshot --model models/shapes` logs a `<4>` warning
/// naming the job for truncated prompts and words the built-in model's vocabulary does not
/// hold, and `result.json` records them under `warnings`; `long_prompt: chunk` truncates nothing.
final class PromptWarningOneshotTests: XCTestCase {
    static let caption = "a red circle at the top left on a blue background"

    func testWarningsAreLoggedAndRecorded() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prompt-warnings-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        // 8 captions of 11 tokens = 88: 13 past the 75 kept. 26 × "a green square" = 78: 3 past.
        let long = Array(repeating: Self.caption, count: 8).joined(separator: " ")
        let negative = Array(repeating: "a green square", count: 26).joined(separator: " ")
        let common = "steps: 2\nseed: 5\n"
        let jobs = [
            "oov": "prompt: a red dragon at the top left on a blue background\n" + common,
            "long": "prompt: \(long)\nnegative_prompt: \(negative)\n" + common,
            "chunked": "prompt: \(long)\nnegative_prompt: \(negative)\nlong_prompt: chunk\n" + common,
            "clean": "prompt: \(Self.caption)\n" + common,
        ]
        let (status, stderr) = try DaemonHarness.oneshot(jobs, in: dir, arguments: [
            "--outbox", dir.appendingPathComponent("out").path,
            "--model", DaemonHarness.repository.appendingPathComponent("models/shapes").path])
        XCTAssertEqual(status, 0, stderr)

        func result(_ name: String) throws -> (JobResult, [String: Any]) {
            let data = try Data(contentsOf: dir.appendingPathComponent("out/\(name)/result.json"))
            return (try JSONDecoder().decode(JobResult.self, from: data),
                    try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any]))
        }
        let oovWarning = "prompt: words not in the model's vocabulary: \"dragon\""
        XCTAssertEqual(try result("oov").0.warnings, [oovWarning])
        let longWarnings = [
            "prompt truncated to 77 tokens: dropped 13 tokens (\"blue background \(Self.caption)\")",
            "negative prompt truncated to 77 tokens: dropped 3 tokens (\"a green square\")",
        ]
        XCTAssertEqual(try result("long").0.warnings, longWarnings)
        XCTAssertEqual(try result("long").0.status, "done")
        for name in ["chunked", "clean"] {
            let (decoded, raw) = try result(name)
            XCTAssertNil(decoded.warnings, name)
            XCTAssertNil(raw["warnings"], "\(name): no key when there is nothing to say")
        }
        let warningLines = stderr.split(separator: "\n").filter { $0.hasPrefix("<4>") }.map(String.init)
        XCTAssertEqual(warningLines, ["<4>job long: " + longWarnings[0], "<4>job long: " + longWarnings[1],
                                      "<4>job oov: " + oovWarning], stderr)
    }
}
