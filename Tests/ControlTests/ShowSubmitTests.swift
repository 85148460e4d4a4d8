#if canImport(Glibc)
import Glibc
#endif
import XCTest
import Foundation

/// Black-box: `show` by id and by name with every parameter, image and timing; `submit`
/// waiting for the intake (ids, or the rejection with its position and exit 65); rejected
/// files in `history` and `status`; `status --json` with zero counts and the socket.
final class ShowSubmitTests: XCTestCase {
    private func write(_ daemon: RunningDaemon, _ name: String, _ text: String) throws -> String {
        let path = daemon.root + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func object(_ value: Any?) throws -> [String: Any] { try XCTUnwrap(value as? [String: Any], "\(String(describing: value))") }

    func testShowByNameAndIDListsEveryParameterImageAndTiming() throws {
        let fixtures = RunningDaemon.repository.appendingPathComponent("Tests/Fixtures")
        let loraDir = fixtures.appendingPathComponent("lora").path
        let daemon = try RunningDaemon(model: fixtures.appendingPathComponent("tiny-sd1").path, extraConfig: "lora_dir: \(loraDir)")
        try daemon.start()
        defer { daemon.stop() }
        let file = try write(daemon, "circle.yaml", """
            prompt: a red circle
            negative_prompt: blurry
            name: circle
            width: 32
            height: 24
            steps: 3
            sampler: euler
            schedule: karras
            guidance: 4.5
            seed: 1234
            count: 2
            rng: philox
            priority: high
            snapshots: 2
            loras: [{name: kohya, weight: 0.5}]
            """)
        let (status, out, err) = try daemon.ctl(["submit", file])
        XCTAssertEqual(status, 0, err)
        XCTAssertEqual(out, "\(file): job 000001 (circle)\n")
        try daemon.waitUntil("the job finishes") {
            let state = try self.object(try daemon.json("show", "circle"))["state"] as? String
            return state == "done" || state == "failed"
        }

        let shown = try object(try daemon.json("show", "circle"))
        XCTAssertEqual(shown["id"] as? String, "000001")
        XCTAssertEqual(shown["state"] as? String, "done", "\(shown["error"] ?? "")")
        XCTAssertEqual(shown["priority"] as? Int, 75)
        XCTAssertEqual(shown["source"] as? String, "circle.yaml")
        XCTAssertEqual(shown["document"] as? Int, 1)
        XCTAssertNil(shown["error"])
        for key in ["submitted", "started", "finished"] { XCTAssertNotNil(shown[key] as? String, key) }
        XCTAssertGreaterThan(shown["seconds"] as? Double ?? 0, 0)
        let parameters = try object(shown["parameters"])
        XCTAssertEqual(parameters["prompt"] as? String, "a red circle")
        XCTAssertEqual(parameters["negative_prompt"] as? String, "blurry")
        XCTAssertEqual(parameters["model"] as? String, "main")
        XCTAssertEqual(parameters["width"] as? Int, 32)
        XCTAssertEqual(parameters["height"] as? Int, 24)
        XCTAssertEqual(parameters["steps"] as? Int, 3)
        XCTAssertEqual(parameters["sampler"] as? String, "euler")
        XCTAssertEqual(parameters["schedule"] as? String, "karras")
        XCTAssertEqual(parameters["guidance"] as? Double, 4.5)
        XCTAssertEqual(parameters["seed"] as? Int, 1234)
        XCTAssertEqual(parameters["count"] as? Int, 2)
        XCTAssertEqual(parameters["rng"] as? String, "philox")
        XCTAssertEqual(parameters["snapshots"] as? Int, 2)
        let loras = try XCTUnwrap(parameters["loras"] as? [[String: Any]])
        XCTAssertEqual(loras.count, 1)
        XCTAssertEqual(loras.first?["name"] as? String, "kohya")
        XCTAssertEqual(loras.first?["weight"] as? Double, 0.5)
        XCTAssertEqual(loras.first?["file"] as? String, loraDir + "/kohya.safetensors")
        let folder = daemon.outbox + "/000001-circle"
        XCTAssertEqual(shown["outbox"] as? String, folder)
        let images = try XCTUnwrap(shown["images"] as? [[String: Any]])
        XCTAssertEqual(images.map { $0["path"] as? String }, [folder + "/image-001.png", folder + "/image-002.png"])
        XCTAssertEqual(images.map { $0["seed"] as? Int }, [1234, 1235])
        XCTAssertTrue(images.allSatisfy { ($0["seconds"] as? Double ?? 0) > 0 }, "\(images)")
        for image in images { XCTAssertTrue(FileManager.default.fileExists(atPath: image["path"] as? String ?? "")) }

        // By id, the same object; for people, one line per field and per image.
        let byID = try object(try daemon.json("show", "000001"))
        XCTAssertEqual(byID["parameters"] as? NSDictionary, parameters as NSDictionary)
        XCTAssertEqual(byID["images"] as? NSArray, images as NSArray)
        let (textStatus, text, textErr) = try daemon.ctl(["show", "1"])
        XCTAssertEqual(textStatus, 0, textErr)
        let lines = Set(text.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") })
        for line in ["id 000001", "name circle", "state done", "priority 75", "source circle.yaml, document 1", "model main",
                     "prompt a red circle", "negative blurry", "size 32x24", "steps 3", "sampler euler", "schedule karras",
                     "guidance 4.5", "seed 1234", "count 2", "rng philox", "snapshots every 2 steps",
                     "lora kohya 0.5 \(loraDir)/kohya.safetensors", "attempts 1", "outbox \(folder)"] {
            XCTAssertTrue(lines.contains(line), "show lacks '\(line)':\n\(text)")
        }
        for (index, seed) in [(1, 1234), (2, 1235)] {
            XCTAssertTrue(lines.contains { $0.hasPrefix("image \(folder)/image-00\(index).png seed \(seed) ") && $0.hasSuffix(" s") }, text)
        }
        for key in ["submitted", "started", "finished", "run time", "per image"] {
            XCTAssertTrue(lines.contains { $0.hasPrefix(key + " ") }, "show lacks \(key):\n\(text)")
        }

        // result.json records the same parameters at its top level, next to the seeds.
        let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/result.json"))
        let result = try object(try JSONSerialization.jsonObject(with: data))
        for (key, value) in parameters { XCTAssertEqual(result[key] as? NSObject, value as? NSObject, "result.json \(key)") }
        XCTAssertEqual((result["images"] as? [[String: Any]])?.map { $0["seed"] as? Int }, [1234, 1235])
        XCTAssertEqual(result["status"] as? String, "done")
    }

    func testShowOfAnAmbiguousNameListsTheIdsAndAMissingOneExits66() throws {
        let daemon = try RunningDaemon()
        try daemon.start()
        defer { daemon.stop() }
        XCTAssertEqual(try daemon.ctl(["pause"]).0, 0)
        // Two documents without `name`: both jobs carry the file's name.
        let twins = try write(daemon, "twins.yaml", "prompt: one\n---\nprompt: two\nnegative_prompt: dull\n")
        let (status, out, err) = try daemon.ctl(["submit", twins])
        XCTAssertEqual(status, 0, err)
        XCTAssertEqual(out, "\(twins) document 1: job 000001 (twins.yaml)\n\(twins) document 2: job 000002 (twins.yaml)\n")

        let (ambiguous, ambiguousOut, ambiguousErr) = try daemon.ctl(["show", "twins.yaml"])
        XCTAssertEqual(ambiguous, 64, ambiguousErr)
        XCTAssertEqual(ambiguousOut, "")
        XCTAssertEqual(ambiguousErr, "diffusionctl: twins.yaml: name 'twins.yaml' is ambiguous: jobs 000001, 000002 have it; give one of their ids\n")
        XCTAssertEqual(try daemon.ctl(["cancel", "twins.yaml"]).0, 64, "a change by an ambiguous name changes nothing")
        XCTAssertEqual(try daemon.queue().map { $0["state"] as? String }, ["queued", "queued"])

        let (missing, _, missingErr) = try daemon.ctl(["show", "nothing-by-that-name"])
        XCTAssertEqual(missing, 66)
        XCTAssertEqual(missingErr, "diffusionctl: nothing-by-that-name: no job with id or name 'nothing-by-that-name'\n")

        // The second one by id: its own parameters; not run yet, so no images.
        let second = try object(try daemon.json("show", "000002"))
        XCTAssertEqual(try object(second["parameters"])["negative_prompt"] as? String, "dull")
        XCTAssertEqual(try object(second["parameters"])["prompt"] as? String, "two")
        XCTAssertEqual(second["document"] as? Int, 2)
        XCTAssertEqual((second["images"] as? [Any])?.count, 0)
    }

    func testSubmitReportsIdsOrTheRejectionWhichHistoryAndStatusList() throws {
        let daemon = try RunningDaemon()
        try daemon.start()
        defer { daemon.stop() }
        XCTAssertEqual(try daemon.ctl(["pause"]).0, 0)

        let good = try write(daemon, "good.yaml", "prompt: a blue square\nname: square\n")
        let (goodStatus, goodOut, goodErr) = try daemon.ctl(["submit", good])
        XCTAssertEqual(goodStatus, 0, goodErr)
        XCTAssertEqual(goodOut, "\(good): job 000001 (square)\n")
        XCTAssertEqual(goodErr, "")
        XCTAssertEqual(try daemon.queue().map { $0["id"] as? String }, ["000001"])

        let bad = try write(daemon, "bad.yaml", "prompt: a green triangle\nsteps: many\n")
        let (badStatus, badOut, badErr) = try daemon.ctl(["submit", good, bad])
        XCTAssertEqual(badStatus, 65, badErr)
        XCTAssertEqual(badOut, "\(good): job 000002 (square)\n", "the good file of the batch is still queued")
        let rejectedPath = daemon.outbox + "/rejected/bad.yaml"
        XCTAssertTrue(badErr.hasPrefix("diffusionctl: \(bad) rejected: bad.yaml:2:8: field 'steps': "), badErr)
        XCTAssertTrue(badErr.hasSuffix(" (the file is now \(rejectedPath))\n"), badErr)
        let reason = try String(contentsOfFile: rejectedPath + ".error", encoding: .utf8).trimmingCharacters(in: .newlines)
        XCTAssertTrue(badErr.contains(reason), "the reason is the .error line: \(reason)")

        // --json: one report per file.
        let again = try write(daemon, "bad-again.yaml", "prompt: [unclosed\n")
        let (jsonStatus, jsonOut, _) = try daemon.ctl(["--json", "submit", again])
        XCTAssertEqual(jsonStatus, 65)
        let reports = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(jsonOut.utf8)) as? [[String: Any]])
        XCTAssertEqual(reports.count, 1)
        XCTAssertEqual(reports.first?["file"] as? String, again)
        let rejection = try object(reports.first?["rejection"])
        XCTAssertEqual(rejection["path"] as? String, daemon.outbox + "/rejected/bad-again.yaml")
        XCTAssertTrue((rejection["reason"] as? String ?? "").hasPrefix("bad-again.yaml:1:"), "\(rejection)")

        // --no-wait: only the copy.
        let (noWait, noWaitOut, _) = try daemon.ctl(["submit", "--no-wait", good])
        XCTAssertEqual(noWait, 0)
        XCTAssertEqual(noWaitOut, "\(good) → \(daemon.inbox)/good.yaml\n")
        try daemon.waitUntil("the third good job is queued") { try daemon.queue().count == 3 }

        // status counts the rejected files; history lists them with reason and path, newest first.
        let status = try object(try daemon.json("status"))
        XCTAssertEqual(status["rejected"] as? Int, 2)
        let (_, statusText, _) = try daemon.ctl(["status"])
        XCTAssertTrue(statusText.contains("rejected: 2 files in \(daemon.outbox)/rejected"), statusText)
        let history = try XCTUnwrap(try daemon.json("history") as? [[String: Any]])
        XCTAssertEqual(history.map { $0["state"] as? String }, ["rejected", "rejected"])
        XCTAssertEqual(history.map { $0["file"] as? String }, ["bad-again.yaml", "bad.yaml"])
        XCTAssertEqual(history.last?["path"] as? String, rejectedPath)
        XCTAssertEqual(history.last?["reason"] as? String, reason)
        let (_, historyText, _) = try daemon.ctl(["history"])
        XCTAssertTrue(historyText.contains("bad.yaml") && historyText.contains("\(reason) (\(rejectedPath))"), historyText)
        XCTAssertEqual((try daemon.json("history", "--limit", "1") as? [[String: Any]])?.map { $0["file"] as? String }, ["bad-again.yaml"])

        // A cancelled job joins the history, newest first, before the older rejections.
        XCTAssertEqual(try daemon.ctl(["cancel", "000001"]).0, 0)
        let merged = try XCTUnwrap(try daemon.json("history") as? [[String: Any]])
        XCTAssertEqual(merged.map { ($0["id"] as? String) ?? ($0["file"] as? String) }, ["000001", "bad-again.yaml", "bad.yaml"])
    }

    func testStatusJSONKeepsZeroCountsAndNamesTheSocket() throws {
        let daemon = try RunningDaemon()
        try daemon.start()
        defer { daemon.stop() }
        let status = try object(try daemon.json("status"))
        XCTAssertEqual(status["counts"] as? [String: Int],
                       ["queued": 0, "held": 0, "running": 0, "done": 0, "failed": 0, "cancelled": 0])
        XCTAssertEqual(status["socket"] as? String, daemon.socket)
        XCTAssertEqual(status["rejected"] as? Int, 0)
        XCTAssertEqual(status["intake_sequence"] as? Int, 0)
        XCTAssertEqual(status["inbox"] as? String, daemon.inbox)
    }
}
