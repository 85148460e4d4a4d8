import ControlProtocol
import Foundation
import Jobs
import XCTest

/// Text that would drive a terminal or hide in a PNG chunk, byte-order marks, and libyaml's
/// reader errors (issue 23, failures 5 and 8).
final class HostileTextTests: XCTestCase {
    var sized: JobDefaults {
        var defaults = JobDefaults()
        defaults.width = 32
        defaults.height = 32
        return defaults
    }

    func error(_ bytes: [UInt8]) -> String {
        do {
            _ = try JobFileParser(defaults: sized).parse(bytes: bytes, file: "job.yaml")
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    func error(_ text: String) -> String { error(Array(text.utf8)) }

    func testEscapeSequencesInAPromptAreRefusedWithThePosition() {
        // Clear screen, set the title, write the clipboard (OSC 52): all through YAML escapes.
        XCTAssertEqual(error("prompt: \"a cat \\e[2J\\e]0;owned\\a\"\n"),
                       "job.yaml:1:9: control character U+001B (ESC) at character 7 of the value; only tab and newline are allowed")
        XCTAssertEqual(error("prompt: ok\nnegative_prompt: \"x\\e]52;c;Zm9v\\a\"\n"),
                       "job.yaml:2:18: control character U+001B (ESC) at character 2 of the value; only tab and newline are allowed")
        XCTAssertEqual(error("prompt: \"bell \\a\"\n"),
                       "job.yaml:1:9: control character U+0007 (BEL) at character 6 of the value; only tab and newline are allowed")
        // C1 (CSI) written as an escape and raw.
        XCTAssertEqual(error("prompt: \"\\x9b2J\"\n"),
                       "job.yaml:1:9: control character U+009B (CSI) at character 1 of the value; only tab and newline are allowed")
        XCTAssertEqual(error(Array("prompt: a\nname: b".utf8) + [0xC2, 0x9B] + Array("c\n".utf8)),
                       "job.yaml:2:8: control character U+009B (CSI); only tab and newline are allowed")
        // Raw ESC in the file.
        XCTAssertEqual(error(Array("prompt: a".utf8) + [0x1B] + Array("[2J\n".utf8)),
                       "job.yaml:1:10: control character U+001B (ESC); only tab and newline are allowed")
        // Tab and newline stay allowed.
        XCTAssertEqual(error("prompt: \"a\\tb\\nc\"\n"), "accepted")
        XCTAssertEqual(error("prompt: |\n  two\n  lines\n"), "accepted")
    }

    func testNULAnywhereIsRefusedWithThePosition() {
        XCTAssertEqual(error("prompt: \"a cat\\0 hidden\"\n"),
                       "job.yaml:1:9: control character U+0000 (NUL) at character 6 of the value; only tab and newline are allowed")
        XCTAssertEqual(error(Array("prompt: x\nname: a".utf8) + [0] + Array("b\n".utf8)),
                       "job.yaml:2:8: binary data (NUL byte); a job file is UTF-8 text")
    }

    func testByteOrderMarkIsAccepted() throws {
        let specs = try JobFileParser(defaults: sized).parse(bytes: [0xEF, 0xBB, 0xBF] + Array("prompt: with a BOM\nsteps: 3\n".utf8), file: "bom.yaml")
        XCTAssertEqual(specs.first?.prompt, "with a BOM")
        XCTAssertEqual(specs.first?.steps, 3)
        // Positions count from the first character after the mark.
        XCTAssertTrue(error([0xEF, 0xBB, 0xBF] + Array("colour: red\n".utf8)).hasPrefix("job.yaml:1:1: field 'colour': unknown field"))
        // And the position of a later error is still right.
        XCTAssertEqual(error([0xEF, 0xBB, 0xBF] + Array("prompt: a\nsteps: many\n".utf8)),
                       "job.yaml:2:8: field 'steps': expected a whole number from 1 to 150, got \"many\"")
    }

    /// libyaml's reader reports a byte offset, not a mark: the error names the real place.
    func testReaderErrorsCarryTheRealPosition() {
        // U+FFFF is valid UTF-8 that YAML does not allow.
        XCTAssertEqual(error("prompt: a\nsteps: 3\nname: x\u{FFFF}\n"),
                       "job.yaml:3:8: YAML syntax error: control characters are not allowed")
    }

    func testEscapingForTerminalsAndJSON() {
        XCTAssertEqual(PrintableText.escaped("a\u{1B}]0;t\u{07}b\tc\nd\u{9B}"), "a\\u{1B}]0;t\\u{7}b\tc\nd\\u{9B}")
        XCTAssertEqual(PrintableText.escaped("a\tb\nc", keepLayout: false), "a\\u{9}b\\u{A}c")
        XCTAssertEqual(PrintableText.jsonEscaped("{\"p\":\"x\u{9B}\u{7F}\"}"), "{\"p\":\"x\\u009b\\u007f\"}")
        // Right-to-left override and line separator are escaped; emoji joiners are not.
        XCTAssertEqual(PrintableText.escaped("a\u{202E}gpj.exe\u{2028}"), "a\\u{202E}gpj.exe\\u{2028}")
        XCTAssertEqual(PrintableText.escaped("👩\u{200D}💻 café"), "👩\u{200D}💻 café")
        XCTAssertEqual(PrintableText.jsonEscaped("\"\u{202E}\""), "\"\\u202e\"")
        XCTAssertEqual(PrintableText.fileName([0xFF, 0xFE] + Array(".yaml".utf8)), "\\xff\\xfe.yaml")
        XCTAssertEqual(PrintableText.fileName(Array("é\u{1B}.yaml".utf8)), "é\u{1B}.yaml")
        XCTAssertEqual(PrintableText.fileName([0x61, 0xC3]), "a\\xc3")
    }
}
