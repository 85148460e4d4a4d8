import ControlProtocol
import Daemon
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// File names as hostile users and odd file systems make them (issue 23, failures 2, 3, 5):
/// rejected files never replace each other, any byte string is taken in or rejected (shown
/// escaped), names near NAME_MAX work with every suffix the daemon adds, and control
/// characters in names are refused and never reach the log raw.
final class FileNameTests: XCTestCase {
    /// Writes `text` under a dot name, then renames it to the raw bytes `name`.
    func drop(_ daemon: DaemonHarness, raw name: [UInt8], _ text: String) throws {
        let temp = daemon.inbox.appendingPathComponent(".raw-\(UUID().uuidString).part")
        try Data(text.utf8).write(to: temp)
        let target = (Array(daemon.inbox.path.utf8) + [UInt8(ascii: "/")] + name + [0]).map { CChar(bitPattern: $0) }
        XCTAssertEqual(rename(temp.path, target), 0, "rename to \(PrintableText.fileName(name))")
    }

    func rejected(_ daemon: DaemonHarness) -> [String] {
        daemon.names(daemon.outbox.appendingPathComponent("rejected")).filter { !$0.hasPrefix(".") }
    }

    func content(_ daemon: DaemonHarness, _ name: String) -> String? {
        try? String(contentsOf: daemon.outbox.appendingPathComponent("rejected/\(name)"), encoding: .utf8)
    }

    func testRejectedFileNeverReplacesAnother() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        try daemon.drop("coll.yaml.error", "steps: 1\n# first user's file\n")
        daemon.waitUntil("first rejected") { rejected(daemon).count == 2 }
        try daemon.drop("coll.yaml", "steps: 2\n# second user's file\n")
        daemon.waitUntil("second rejected") { rejected(daemon).count == 4 }
        try daemon.drop("coll.yaml", "steps: 3\n# third\n")
        daemon.waitUntil("third rejected") { rejected(daemon).count == 6 }
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual(rejected(daemon), ["coll.yaml.1", "coll.yaml.1.error", "coll.yaml.2", "coll.yaml.2.error",
                                          "coll.yaml.error", "coll.yaml.error.error"])
        XCTAssertEqual(content(daemon, "coll.yaml.error"), "steps: 1\n# first user's file\n", "the first user's file is intact")
        XCTAssertEqual(content(daemon, "coll.yaml.1"), "steps: 2\n# second user's file\n")
        XCTAssertEqual(content(daemon, "coll.yaml.2"), "steps: 3\n# third\n")
        XCTAssertEqual(daemon.rejectionReason("coll.yaml.error"), "coll.yaml.error:1:1: field 'prompt': required field is missing")
        XCTAssertEqual(daemon.rejectionReason("coll.yaml.1"), "coll.yaml:1:1: field 'prompt': required field is missing")
        // history --rejected lists the three rejections, not the first user's file as a reason.
        try daemon.start()
        let (status, text) = try daemon.control(["history"])
        XCTAssertEqual(status, 0, text)
        let items = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] ?? []
        XCTAssertEqual(Set(items.compactMap { $0["file"] as? String }),
                       ["coll.yaml.error", "coll.yaml.1", "coll.yaml.2"], text)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// A rejection a crash cut short (its `.error` written, the file not yet moved) is
    /// repeated under the same name, while a rejected file that ends in `.error` is kept.
    func testRepeatedRejectionAfterACrashKeepsItsNameButNeverReplacesAFile() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("reject-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: root) }
        let outbox = Outbox(root: root.appendingPathComponent("outbox"))
        let claimed = root.appendingPathComponent("claimed")
        try FileManager.default.createDirectory(at: claimed, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: outbox.rejected, withIntermediateDirectories: true)
        try "orphan reason\n".write(to: outbox.rejected.appendingPathComponent("a.yaml.error"), atomically: true, encoding: .utf8)
        try "a\n".write(to: claimed.appendingPathComponent("1~a.yaml"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try outbox.reject(claimed: claimed.appendingPathComponent("1~a.yaml"), originalName: "a.yaml", reason: "again"), "a.yaml")
        XCTAssertEqual(try String(contentsOf: outbox.rejected.appendingPathComponent("a.yaml.error"), encoding: .utf8), "again\n")
        try "b\n".write(to: claimed.appendingPathComponent("2~b.yaml.error"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try outbox.reject(claimed: claimed.appendingPathComponent("2~b.yaml.error"), originalName: "b.yaml.error", reason: "one"),
                       "b.yaml.error")
        try "c\n".write(to: claimed.appendingPathComponent("3~b.yaml"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try outbox.reject(claimed: claimed.appendingPathComponent("3~b.yaml"), originalName: "b.yaml", reason: "two"), "b.yaml.1")
        XCTAssertEqual(try String(contentsOf: outbox.rejected.appendingPathComponent("b.yaml.error"), encoding: .utf8), "b\n")
    }

    func testAnyByteNameIsTakenInOrRejectedShownEscaped() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        try drop(daemon, raw: [0xFF, 0xFE] + Array(".yaml".utf8), "prompt: not utf-8 named\n")
        try drop(daemon, raw: Array("bad-".utf8) + [0xFF, 0xFE] + Array(".yaml".utf8), "steps: 1\n")
        daemon.waitUntil("both taken") { daemon.results.count == 1 && rejected(daemon).count == 2 }
        XCTAssertEqual(daemon.results.first?.result.source, "\\xff\\xfe.yaml")
        XCTAssertEqual(rejected(daemon), ["bad-\\xff\\xfe.yaml", "bad-\\xff\\xfe.yaml.error"])
        XCTAssertEqual(daemon.rejectionReason("bad-\\xff\\xfe.yaml"), "bad-\\xff\\xfe.yaml:1:1: field 'prompt': required field is missing")
        XCTAssertEqual(daemon.names(daemon.inbox), [])
        XCTAssertEqual(daemon.names(daemon.state.appendingPathComponent("claimed")), [])
        XCTAssertEqual(daemon.stop(), 0)
    }

    func testNamesNearNameMaxWorkWithEverySuffix() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let good = String(repeating: "g", count: 245) + ".yaml"   // 250 bytes
        let bad = String(repeating: "b", count: 245) + ".yaml"
        let badToo = String(repeating: "b", count: 246) + ".yml"  // the same first 200 bytes
        XCTAssertEqual(good.utf8.count, 250)
        try drop(daemon, raw: Array(good.utf8), "prompt: a long name\n")
        try drop(daemon, raw: Array(bad.utf8), "steps: 1\n")
        daemon.waitUntil("both taken") { daemon.results.count == 1 && rejected(daemon).count == 2 }
        try drop(daemon, raw: Array(badToo.utf8), "steps: 1\n")
        daemon.waitUntil("the second long reject") { rejected(daemon).count == 4 }
        XCTAssertEqual(daemon.results.first?.result.source, good)
        let short = String(repeating: "b", count: 200)
        XCTAssertEqual(rejected(daemon), [short, short + ".1", short + ".1.error", short + ".error"])
        XCTAssertEqual(daemon.rejectionReason(short), "\(bad):1:1: field 'prompt': required field is missing")
        XCTAssertEqual(daemon.rejectionReason(short + ".1"), "\(badToo):1:1: field 'prompt': required field is missing")
        XCTAssertEqual(daemon.names(daemon.inbox), [])
        XCTAssertEqual(daemon.names(daemon.state.appendingPathComponent("claimed")), [])
        XCTAssertEqual(daemon.stop(), 0)
    }

    func testControlCharactersInANameAreRefusedAndNeverLoggedRaw() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        try daemon.drop("evil\u{1B}]0;owned\u{07}.yaml", "prompt: fine content\n")
        try daemon.drop("prompt.yaml", "prompt: \"a cat \\e[2J\"\n")
        daemon.waitUntil("both rejected") { rejected(daemon).count == 4 }
        XCTAssertEqual(daemon.stop(), 0)
        let escapedName = "evil\\u{1B}]0;owned\\u{7}.yaml"
        XCTAssertEqual(rejected(daemon), [escapedName, escapedName + ".error", "prompt.yaml", "prompt.yaml.error"])
        XCTAssertEqual(daemon.rejectionReason(escapedName),
                       "\(escapedName):0:0: file name: control character U+001B (ESC) at character 5 of the name; rename the file without it")
        XCTAssertEqual(daemon.rejectionReason("prompt.yaml"),
                       "prompt.yaml:1:9: control character U+001B (ESC) at character 7 of the value; only tab and newline are allowed")
        XCTAssertEqual(daemon.results.count, 0)
        let log = try Data(contentsOf: daemon.logURL)
        XCTAssertFalse(log.contains(0x1B), "no raw ESC in the log")
        XCTAssertFalse(log.contains(0x07), "no raw BEL in the log")
        XCTAssertTrue(daemon.log.contains("rejected \(escapedName) → rejected/\(escapedName)"), daemon.log)
    }
}
