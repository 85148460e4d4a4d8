#if canImport(Glibc)
import Glibc
#endif
import XCTest
import Foundation
import ControlProtocol
import ControlClient

/// `diffusionctl` in-process against the real server and the in-test queue: every verb,
/// `--json` shapes, exit codes.
final class DiffusionCtlTests: XCTestCase {
    var fixture: ServerFixture?

    override func setUpWithError() throws { fixture = try ServerFixture() }
    override func tearDown() { fixture?.tearDown() }

    private func jsonArray(_ text: String) throws -> [[String: Any]] {
        let value = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try XCTUnwrap(value as? [[String: Any]], text)
    }

    private func jsonObject(_ text: String) throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try XCTUnwrap(value as? [String: Any], text)
    }

    func testQueueJSONHasTheContractFieldsInPriorityOrder() throws {
        let f = try XCTUnwrap(fixture)
        let low = f.queue.add(name: "low", priority: 25)
        let high = f.queue.add(name: "high", priority: 75)
        f.queue.add(name: "gone", priority: 90, state: .failed)
        let (status, out, err) = f.ctl("--json", "queue")
        XCTAssertEqual(status, 0, err)
        let jobs = try jsonArray(out)
        XCTAssertEqual(jobs.map { $0["id"] as? String }, [high.id, low.id])
        for job in jobs {
            for key in ["id", "name", "state", "priority", "owner", "model", "submitted"] {
                XCTAssertNotNil(job[key], "queue --json lacks \(key)")
            }
            XCTAssertEqual(job["state"] as? String, "queued")
            XCTAssertEqual((job["owner"] as? [String: Any])?["uid"] as? Int, 0)
        }
        XCTAssertEqual(jobs.first?["priority"] as? Int, 75)
        let (_, allOut, _) = f.ctl("queue", "--all", "--json")
        XCTAssertEqual(try jsonArray(allOut).count, 3)
    }

    func testHumanQueueStatusShowModelsHistory() throws {
        let f = try XCTUnwrap(fixture)
        let job = f.queue.add(name: "cat", priority: 50)
        f.queue.add(name: "old", priority: 50, state: .done)
        let (s1, queueText, _) = f.ctl("queue")
        XCTAssertEqual(s1, 0)
        XCTAssertTrue(queueText.hasPrefix("ID"), queueText)
        XCTAssertTrue(queueText.contains(job.id) && queueText.contains("cat") && !queueText.contains("old"), queueText)
        let (s2, statusText, _) = f.ctl("status")
        XCTAssertEqual(s2, 0)
        XCTAssertTrue(statusText.contains("queued 1") && statusText.contains("done 1"), statusText)
        XCTAssertTrue(statusText.contains("inbox:    /spool/inbox"), statusText)
        let (s3, showText, _) = f.ctl("show", job.id)
        XCTAssertEqual(s3, 0)
        XCTAssertTrue(showText.contains("prompt of cat"), showText)
        let (s4, modelsText, _) = f.ctl("models")
        XCTAssertEqual(s4, 0)
        XCTAssertTrue(modelsText.contains("shapes") && modelsText.contains("sd15"), modelsText)
        let (s5, historyJSON, _) = f.ctl("history", "--json")
        XCTAssertEqual(s5, 0)
        XCTAssertEqual(try jsonArray(historyJSON).map { $0["name"] as? String }, ["old"])
        let (s6, statusJSON, _) = f.ctl("--json", "status")
        XCTAssertEqual(s6, 0)
        XCTAssertEqual(try jsonObject(statusJSON)["paused"] as? Bool, false)
    }

    /// A prompt or name holding terminal escapes (from an older daemon's journal, or any
    /// peer) is printed escaped: show, queue and --json never pass ESC, BEL or C1 raw.
    func testShowQueueAndJSONEscapeControlCharacters() throws {
        let f = try XCTUnwrap(fixture)
        let job = f.queue.add(name: "t\u{1B}]0;owned\u{07}")
        for arguments in [["show", job.id], ["queue"], ["--json", "show", job.id], ["--json", "queue"], ["history"]] {
            let (status, out, err) = f.ctl(arguments)
            XCTAssertEqual(status, 0, err)
            XCTAssertFalse(out.unicodeScalars.contains { $0 == "\u{1B}" || $0 == "\u{07}" || $0 == "\u{9B}" }, "\(arguments): \(out)")
        }
        let (_, shown, _) = f.ctl("show", job.id)
        XCTAssertTrue(shown.contains("t\\u{1B}]0;owned\\u{7}"), shown)
        let (_, json, _) = f.ctl("--json", "show", job.id)
        XCTAssertEqual(try jsonObject(json)["name"] as? String, "t\u{1B}]0;owned\u{07}", "JSON still carries the value")
    }

    func testChangesAndTheirExitCodes() throws {
        let f = try XCTUnwrap(fixture)
        let a = f.queue.add(name: "a")
        let b = f.queue.add(name: "b")
        XCTAssertEqual(f.ctl("hold", a.id, b.id).0, 0)
        XCTAssertEqual(try f.queue.show(id: b.id).state, .held)
        XCTAssertEqual(f.ctl("release", a.id).0, 0)
        let (conflict, _, conflictErr) = f.ctl("release", a.id)
        XCTAssertEqual(conflict, 65, "release of a job that is not held is a conflict")
        XCTAssertTrue(conflictErr.contains(a.id), conflictErr)
        let (missing, _, missingErr) = f.ctl("cancel", "nope", a.id)
        XCTAssertEqual(missing, 66, "unknown id")
        XCTAssertTrue(missingErr.contains("nope"), missingErr)
        XCTAssertEqual(try f.queue.show(id: a.id).state, .cancelled, "later ids are still processed")
        XCTAssertEqual(f.ctl("retry", a.id).0, 0)
        XCTAssertEqual(try f.queue.show(id: a.id).state, .queued)
        let (p, pOut, _) = f.ctl("--json", "priority", a.id, "urgent")
        XCTAssertEqual(p, 0)
        XCTAssertEqual(try jsonObject(pOut)["priority"] as? Int, 100)
        XCTAssertEqual(f.ctl("priority", a.id, "101").0, 64)
        XCTAssertEqual(f.ctl("pause").0, 0)
        XCTAssertTrue(f.queue.paused)
        let (r, rOut, _) = f.ctl("resume", "--json")
        XCTAssertEqual(r, 0)
        XCTAssertEqual(try jsonObject(rOut)["paused"] as? Bool, false)
    }

    func testUsageErrorsExit64() throws {
        let f = try XCTUnwrap(fixture)
        let (none, _, noneErr) = f.ctl([])
        XCTAssertEqual(none, 64)
        XCTAssertTrue(noneErr.hasPrefix("diffusionctl: no verb given\nusage:"), noneErr)
        // A wrong word or value: one line that says what is wrong, not the whole usage.
        for (arguments, message) in [(["frobnicate"], "unknown verb 'frobnicate'"), (["show"], "show needs at least one job id"),
                                     (["priority", "x"], "priority needs a job id and a level"),
                                     (["priority", "000005", "101"], "101"), (["queue", "--bogus"], "queue: unknown argument '--bogus'"),
                                     (["status", "extra"], "status takes no arguments, got 'extra'"),
                                     (["history", "--limit", "-1"], "history takes only --limit N"), (["--socket"], "--socket needs a path")] {
            let (status, _, err) = f.ctl(arguments)
            XCTAssertEqual(status, 64, "\(arguments)")
            XCTAssertTrue(err.hasPrefix("diffusionctl: ") && err.contains(message), "\(arguments): \(err)")
            XCTAssertEqual(err.filter { $0 == "\n" }.count, 1, "\(arguments): one line, got \(err)")
            XCTAssertTrue(err.hasSuffix(" (diffusionctl --help lists the verbs)\n"), err)
        }
        let (help, helpOut, _) = f.ctl("--help")
        XCTAssertEqual(help, 0)
        XCTAssertTrue(helpOut.contains("watch [--once]"))
    }

    func testDaemonDownExits69NamingTheSocket() throws {
        let f = try XCTUnwrap(fixture)
        let absent = f.directory + "/run/none.sock"
        var err = ""
        let status = DiffusionCtl.run(["status"], environment: ["DIFFUSIOND_SOCKET": absent],
                                      output: CtlOutput(out: { _ in }, err: { err += $0 }, isTerminal: false))
        XCTAssertEqual(status, 69)
        XCTAssertTrue(err.contains("not running") && err.contains(absent), err)
    }

    func testSubmitCopiesIntoTheInboxUnderAFreshName() throws {
        let f = try XCTUnwrap(fixture)
        let inbox = f.directory + "/inbox"
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
        let source = f.directory + "/job.yaml"
        try Data("prompt: a red circle\n".utf8).write(to: URL(fileURLWithPath: source))
        XCTAssertEqual(try JobSubmission.submit(file: source, inbox: inbox), inbox + "/job.yaml")
        XCTAssertEqual(try JobSubmission.submit(file: source, inbox: inbox), inbox + "/job-2.yaml")
        XCTAssertEqual(FileManager.default.contents(atPath: inbox + "/job-2.yaml"), Data("prompt: a red circle\n".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: inbox).sorted(), ["job-2.yaml", "job.yaml"],
                       "no temp file is left behind")
        XCTAssertThrowsError(try JobSubmission.submit(file: f.directory + "/absent.yaml", inbox: inbox)) {
            XCTAssertEqual(($0 as? SubmitError)?.exitCode, 66)
        }
        XCTAssertThrowsError(try JobSubmission.submit(file: f.directory, inbox: inbox)) {
            XCTAssertEqual(($0 as? SubmitError)?.exitCode, 65)
        }
        // Through the command: the in-test queue reports /spool/inbox, which does not exist.
        let (status, _, err) = f.ctl("submit", source)
        XCTAssertEqual(status, 73, err)
        XCTAssertTrue(err.contains("/spool/inbox"), err)
    }

    func testWatchOnceReportsEstimates() throws {
        let f = try XCTUnwrap(fixture)
        f.queue.add(name: "next", priority: 50, steps: 20)
        let (status, out, err) = f.ctl("--json", "watch", "--once")
        XCTAssertEqual(status, 0, err)
        let snapshot = try jsonObject(out)
        let estimate = try XCTUnwrap(snapshot["estimate"] as? [String: Any])
        XCTAssertEqual(estimate["queued_jobs"] as? Int, 1)
        XCTAssertEqual(estimate["remaining_steps"] as? Int, 20)
        let (_, human, _) = f.ctl("watch", "--once")
        XCTAssertTrue(human.contains("idle") && human.contains("1 job waiting"), human)
    }

    func testEstimateAndRateMeter() {
        var meter = StepRateMeter()
        let t0 = Date(timeIntervalSince1970: 100)
        XCTAssertNil(meter.add(id: "a", at: t0, completedSteps: 1))
        XCTAssertEqual(meter.add(id: "a", at: t0.addingTimeInterval(2), completedSteps: 5) ?? 0, 2, accuracy: 1e-9)
        XCTAssertNil(meter.add(id: "b", at: t0.addingTimeInterval(3), completedSteps: 1), "a new job restarts the meter")
        let owner = JobInfo.Owner(uid: 0, user: "root")
        let running = JobInfo(id: "r", name: "r", state: .running, priority: 50, owner: owner, model: "m",
                                submitted: t0, prompt: "", steps: 10, count: 2,
                                progress: JobInfo.Progress(step: 5, total: 10, image: 1, count: 2))
        let queued = JobInfo(id: "q", name: "q", state: .queued, priority: 50, owner: owner, model: "m",
                               submitted: t0, prompt: "", steps: 20, count: 1)
        var held = queued
        held.id = "h"
        held.state = .held
        let estimate = WatchEstimate.make(running: running, queue: [running, queued, held], rate: 5)
        XCTAssertEqual(estimate.remainingSteps, 5 + 20, "held jobs do not count")
        XCTAssertEqual(estimate.etaJob ?? 0, 1, accuracy: 1e-9)
        XCTAssertEqual(estimate.etaQueue ?? 0, 5, accuracy: 1e-9)
        XCTAssertEqual(estimate.queuedJobs, 1)
        XCTAssertNil(WatchEstimate.make(running: running, queue: [], rate: 0).etaJob)
    }
}
