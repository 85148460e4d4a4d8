import Foundation
import Jobs
import XCTest

/// Job fields against an SDXL model's family (issue 15): what it does not run is refused at
/// intake with file, line, column and field; the negative prompt's presence is kept.
final class XLJobTests: XCTestCase {
    private let parser: JobFileParser = {
        var p = JobFileParser(knownModels: ["sdxl", "sd"], nativeSize: { _ in NativeImageSize(width: 64, height: 64, vaeFactor: 8) })
        p.modelFamily = { name in name == "sd" ? .stableDiffusion : .stableDiffusionXL }
        p.inputBase = URL(fileURLWithPath: "/tmp")
        return p
    }()

    private func error(_ text: String) -> String {
        do {
            _ = try parser.parse(bytes: Array(text.utf8), file: "job.yaml")
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    func testUnsupportedFieldsAreRefusedOnSDXL() {
        XCTAssertEqual(error("prompt: a\nmodel: sdxl\nupscale: 2\n"),
                       "job.yaml:3:10: field 'upscale': model \"sdxl\" is an SDXL model, which runs text-to-image only here: the hires fix is not supported on it")
        XCTAssertEqual(error("prompt: a\ninit_image: /tmp/x.png\n"),
                       "job.yaml:2:13: field 'init_image': the default model is an SDXL model, which runs text-to-image only here: img2img is not supported on it")
        XCTAssertEqual(error("prompt: a\nmodel: sdxl\nlong_prompt: chunk\n"),
                       "job.yaml:3:14: field 'long_prompt': model \"sdxl\" is an SDXL model, which runs text-to-image only here: chunk (SDXL prompts are truncated to 77 tokens, as diffusers does) is not supported on it")
        // The same fields pass on an SD model, and cache works on SDXL.
        XCTAssertEqual(error("prompt: a\nmodel: sd\nupscale: 2\n"), "accepted")
        XCTAssertEqual(error("prompt: a\nmodel: sdxl\ncache: 2\nguidance_cutoff: 0.5\n"), "accepted")
    }

    /// `negative_prompt: ""` is given (SDXL encodes it); no key, or no value, is none (zeros
    /// under force_zeros_for_empty_prompt). The journal keeps it.
    func testNegativePromptPresenceIsKept() throws {
        func spec(_ text: String) throws -> JobSpec { try XCTUnwrap(try parser.parse(bytes: Array(text.utf8), file: "job.yaml").first) }
        let given = try spec("prompt: a\nnegative_prompt: \"\"\n")
        XCTAssertTrue(given.negativePromptGiven)
        XCTAssertTrue(given.request(image: 0).negativePromptGiven)
        XCTAssertEqual(given.negativePrompt, "")
        XCTAssertFalse(try spec("prompt: a\n").negativePromptGiven)
        XCTAssertFalse(try spec("prompt: a\nnegative_prompt:\n").negativePromptGiven)
        XCTAssertTrue(try spec("prompt: a\nnegative_prompt: blurry\n").negativePromptGiven)
        let decoded = try JSONDecoder().decode(JobSpec.self, from: JSONEncoder().encode(given))
        XCTAssertEqual(decoded, given)
        // A spec journalled before the field existed reads as not given.
        let plain = try spec("prompt: a\n")
        let json = String(decoding: try JSONEncoder().encode(plain), as: UTF8.self)
        XCTAssertFalse(json.contains("negativePromptGiven"), json)
        XCTAssertEqual(try JSONDecoder().decode(JobSpec.self, from: Data(json.utf8)), plain)
    }
}
