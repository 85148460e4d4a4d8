@testable import Daemon
import Foundation
import Jobs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Batch forms through the running daemon (issue 17): an overnight prompts file becomes one
/// queued job per line; a wildcard job, submitted again with its seed, gets the same prompts,
/// which its images record.
final class BatchFormsDaemonTests: XCTestCase {
    func testThousandLinePromptsFileQueuesThousandJobs() throws {
        let daemon = try DaemonHarness()
        let lists = daemon.root.appendingPathComponent("lists")
        try FileManager.default.createDirectory(at: lists, withIntermediateDirectories: true)
        chmod(daemon.root.path, 0o755)
        chmod(lists.path, 0o755)
        let file = lists.appendingPathComponent("overnight.txt")
        let lines = ["# an overnight list"] + (1...1000).map { "a red circle, variation \($0)" }
        try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        chmod(file.path, 0o644)
        try daemon.start()
        daemon.waitUntil("socket up") { FileManager.default.fileExists(atPath: daemon.socket.path) }
        XCTAssertEqual(try daemon.control(["pause"]).0, 0)
        try daemon.drop("overnight.yaml", "prompts_file: \(file.path)\nseed: 9\n")
        daemon.waitUntil("the list taken in") { daemon.log.contains("queued from overnight.yaml") }
        let (status, listing) = try daemon.control(["queue"])
        XCTAssertEqual(status, 0)
        let listed = try JSONSerialization.jsonObject(with: Data(listing.utf8)) as? [[String: Any]] ?? []
        XCTAssertEqual(listed.count, 1000, "one queued job per prompt line")
        XCTAssertEqual(Set(listed.compactMap { $0["id"] as? String }).count, 1000)
        XCTAssertEqual(daemon.log.components(separatedBy: "queued from overnight.yaml").count - 1, 1000)
        XCTAssertEqual(daemon.rejectedNames, [])
        XCTAssertEqual(daemon.stop(), 0)
    }

    func testWildcardJobRerunsToTheSamePrompts() throws {
        _ = try XCTUnwrap(DaemonHarness.fixtureModel)
        let wildcards = FileManager.default.temporaryDirectory.appendingPathComponent("wildcards-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: wildcards, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: wildcards) }
        try (1...30).map { "colour \($0)" }.joined(separator: "\n").write(to: wildcards.appendingPathComponent("colour.txt"),
                                                                          atomically: true, encoding: .utf8)
        try "circle\nsquare\ntriangle\nstar\n".write(to: wildcards.appendingPathComponent("shape.txt"), atomically: true, encoding: .utf8)
        let daemon = try DaemonHarness(extraConfig: "wildcards_dir: \(wildcards.path)")
        try daemon.start()
        let job = "prompts:\n  - a __colour__ __shape__ on a {black|white} background\n  - a {tiny|huge} __shape__\nseed: 21\n"
        try daemon.drop("first.yaml", job)
        daemon.waitUntil("the first two jobs") { daemon.results.count == 2 }
        try daemon.drop("again.yaml", job)
        try daemon.drop("other.yaml", job.replacingOccurrences(of: "seed: 21", with: "seed: 22"))
        daemon.waitUntil("six jobs") { daemon.results.count == 6 }
        let bySource = Dictionary(grouping: daemon.results, by: \.result.source)
        func prompts(_ source: String) throws -> [String] {
            try XCTUnwrap(bySource[source]).sorted { $0.result.id < $1.result.id }.map { folder, result in
                // The PNG records the expanded prompt, as result.json does.
                let png = (try? Data(contentsOf: daemon.outbox.appendingPathComponent("\(folder)/image-001.png"))) ?? Data()
                let text = (try? PNGChunks.read([UInt8](png)))?.first { $0.type == "tEXt" }.map { String(decoding: $0.data, as: UTF8.self) } ?? ""
                XCTAssertTrue(text.hasPrefix("parameters\u{0}" + result.parameters.prompt + "\n"), text)
                return result.parameters.prompt
            }
        }
        let first = try prompts("first.yaml")
        XCTAssertEqual(try prompts("again.yaml"), first, "the same seed reruns to the same prompts")
        XCTAssertNotEqual(try prompts("other.yaml"), first, "another seed draws others")
        for prompt in first { XCTAssertFalse(prompt.contains("__") || prompt.contains("{"), prompt) }
        XCTAssertTrue(first[0].hasPrefix("a colour "), first[0])
        XCTAssertEqual(daemon.stop(), 0)
    }
}
