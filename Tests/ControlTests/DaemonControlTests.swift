#if canImport(Glibc)
import Glibc
#endif
import XCTest
import Foundation
import ControlClient
import ControlProtocol

/// Black-box: the built `diffusiond` driven by the built `diffusionctl`, every verb, the
/// `--json` shapes and the exit codes (daemon down, permission denied).
final class DaemonControlTests: XCTestCase {
    private func writeJob(_ dir: String, _ name: String, _ text: String) throws -> String {
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Running a client as another uid (setpriv) and chown need root.
    private func requireRoot() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to run a client as another uid") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { throw XCTSkip("setpriv(1) missing") }
    }

    private func ids(_ jobs: [[String: Any]]) -> [String] { jobs.compactMap { $0["id"] as? String } }

    /// Submits one file, which `submit` waits for: it prints the job's id, which the queue
    /// (then holding `count` jobs) has. Returns the id.
    private func submit(_ daemon: RunningDaemon, _ name: String, _ text: String, expecting count: Int) throws -> String {
        let before = Set(ids(try daemon.queue(all: true)))
        let file = try writeJob(daemon.root, name, text)
        let (status, out, err) = try daemon.ctl(["submit", file])
        XCTAssertEqual(status, 0, err)
        let queue = try daemon.queue(all: true)
        XCTAssertEqual(queue.count, count, "submit returns once the job is queued")
        let id = try XCTUnwrap(Set(ids(queue)).subtracting(before).first)
        let name = queue.first { $0["id"] as? String == id }?["name"] as? String ?? ""
        XCTAssertEqual(out, "\(file): job \(id) (\(name))\n")
        return id
    }

    func testEveryQueueVerbOnAPausedDaemon() throws {
        let daemon = try RunningDaemon()
        try daemon.start()
        defer { daemon.stop() }

        // pause first, so that nothing starts while the queue is arranged.
        XCTAssertEqual(try daemon.ctl(["pause"]).0, 0)
        let status = try XCTUnwrap(try daemon.json("status") as? [String: Any])
        XCTAssertEqual(status["paused"] as? Bool, true)
        XCTAssertEqual(status["inbox"] as? String, daemon.inbox)

        let low = try submit(daemon, "low.yaml", "prompt: low\npriority: low\n", expecting: 1)
        let normal1 = try submit(daemon, "n1.yaml", "prompt: first normal\nname: first\n", expecting: 2)
        let urgent = try submit(daemon, "u.yaml", "prompt: urgent\npriority: urgent\n", expecting: 3)
        let normal2 = try submit(daemon, "n2.yaml", "prompt: second normal\npriority: 50\n", expecting: 4)

        // queue: by priority, first come first served within a priority; --json shape.
        let queue = try daemon.queue()
        XCTAssertEqual(ids(queue), [urgent, normal1, normal2, low])
        for job in queue {
            for key in ["id", "name", "state", "priority", "owner", "model", "submitted"] {
                XCTAssertNotNil(job[key], "queue --json lacks \(key): \(job)")
            }
            XCTAssertEqual(job["state"] as? String, "queued")
            XCTAssertEqual(job["model"] as? String, "main")
            XCTAssertEqual((job["owner"] as? [String: Any])?["uid"] as? Int, Int(geteuid()))
            XCTAssertNotNil(ISO8601DateFormatter().date(from: (job["submitted"] as? String ?? "").replacingOccurrences(
                of: "\\.\\d+", with: "", options: .regularExpression)), "submitted is ISO 8601")
        }
        XCTAssertEqual(queue.map { $0["priority"] as? Int }, [100, 50, 50, 25])
        XCTAssertEqual(queue[1]["name"] as? String, "first")

        // priority: the low job becomes urgent; among equal priorities submission order
        // decides, and it was submitted first.
        let (pStatus, pOut, _) = try daemon.ctl(["--json", "priority", low, "urgent"])
        XCTAssertEqual(pStatus, 0)
        XCTAssertTrue(pOut.contains("\"priority\" : 100"), pOut)
        XCTAssertEqual(ids(try daemon.queue()), [low, urgent, normal1, normal2])
        XCTAssertEqual(try daemon.ctl(["priority", normal2, "0"]).0, 0)
        XCTAssertEqual(ids(try daemon.queue()), [low, urgent, normal1, normal2])
        XCTAssertEqual(try daemon.ctl(["priority", normal2, "high"]).0, 0)
        XCTAssertEqual(ids(try daemon.queue()), [low, urgent, normal2, normal1])
        XCTAssertEqual(try daemon.ctl(["priority", low, "101"]).0, 64)

        // hold / release.
        XCTAssertEqual(try daemon.ctl(["hold", normal1]).0, 0)
        XCTAssertEqual(try daemon.queue().first { $0["id"] as? String == normal1 }?["state"] as? String, "held")
        XCTAssertEqual(try daemon.ctl(["release", normal1]).0, 0)
        XCTAssertEqual(try daemon.queue().first { $0["id"] as? String == normal1 }?["state"] as? String, "queued")

        // cancel of a queued job; it leaves the queue, stays in --all and history; retry brings it back.
        XCTAssertEqual(try daemon.ctl(["cancel", normal2]).0, 0)
        XCTAssertFalse(ids(try daemon.queue()).contains(normal2))
        XCTAssertEqual(try daemon.queue(all: true).first { $0["id"] as? String == normal2 }?["state"] as? String, "cancelled")
        let (conflict, _, conflictErr) = try daemon.ctl(["hold", normal2])
        XCTAssertEqual(conflict, 65, "hold of a cancelled job is a conflict: \(conflictErr)")
        XCTAssertTrue(conflictErr.contains(normal2), conflictErr)
        let history = try XCTUnwrap(try daemon.json("history") as? [[String: Any]])
        XCTAssertEqual(ids(history), [normal2])
        XCTAssertEqual(try daemon.ctl(["retry", normal2]).0, 0)
        XCTAssertEqual(try daemon.queue().first { $0["id"] as? String == normal2 }?["state"] as? String, "queued")
        XCTAssertEqual(try daemon.ctl(["retry", normal2]).0, 65, "a queued job cannot be retried")

        // show, models, unknown ids.
        let shown = try XCTUnwrap(try daemon.json("show", urgent) as? [String: Any])
        XCTAssertEqual(shown["prompt"] as? String, "urgent")
        let models = try XCTUnwrap(try daemon.json("models") as? [[String: Any]])
        XCTAssertEqual(models.first?["name"] as? String, "main")
        XCTAssertEqual(models.first?["default"] as? Bool, true)
        XCTAssertEqual(try daemon.ctl(["show", "999999"]).0, 66)
        XCTAssertEqual(try daemon.ctl(["cancel", "999999"]).0, 66)

        // watch --once while paused and idle: the whole queue is waiting.
        let snapshot = try XCTUnwrap(try daemon.json("watch", "--once") as? [String: Any])
        XCTAssertEqual(snapshot["paused"] as? Bool, true)
        XCTAssertEqual((snapshot["estimate"] as? [String: Any])?["queued_jobs"] as? Int, 4)

        // resume: the jobs start; with no loadable model they fail, and retry queues one again.
        XCTAssertEqual(try daemon.ctl(["resume"]).0, 0)
        XCTAssertEqual((try daemon.json("status") as? [String: Any])?["paused"] as? Bool, false)
        // This daemon's model folder does not exist, so every job fails at load.
        try daemon.waitUntil("every job failed") { try daemon.queue().isEmpty }
        let failed = try daemon.queue(all: true).filter { $0["state"] as? String == "failed" }
        XCTAssertEqual(failed.count, 4)
        XCTAssertNotNil(failed.first?["error"] as? String)
        // history: newest first, so the job that started last (lowest priority) leads.
        let finishedHistory = try XCTUnwrap(try daemon.json("history") as? [[String: Any]])
        XCTAssertEqual(ids(finishedHistory), [normal1, normal2, urgent, low])
        XCTAssertEqual((try daemon.json("history", "--limit", "2") as? [[String: Any]]).map(ids), [normal1, normal2])
    }

    func testCancelOfARunningJobAndWatch() throws {
        guard let model = RunningDaemon.model else {
            throw ControlTestError("no loadable model in the repository (models/shapes or Tests/Fixtures/tiny-sd1)")
        }
        let daemon = try RunningDaemon(model: model, steps: 150)
        try daemon.start()
        defer { daemon.stop() }
        let id = try submit(daemon, "long.yaml", "prompt: a long job\ncount: 16\nsnapshots: 2\n", expecting: 1)
        var running = false
        try daemon.waitUntil("the job runs") {
            let state = try daemon.queue().first?["state"] as? String
            if state == "running" { running = true }
            return running || state == nil
        }
        guard running else { throw ControlTestError("the engine finished or failed the job before it could be cancelled:\n\(daemon.log)") }
        let snapshot = try XCTUnwrap(try daemon.json("watch", "--once") as? [String: Any])
        XCTAssertEqual((snapshot["running"] as? [String: Any])?["id"] as? String, id)
        // Live step events from the worker, as `watch` sees them.
        var steps: [JobInfo.Progress] = []
        var previews: [ControlEvent] = []
        let watcher = try ControlSession(socketPath: daemon.socket)
        try watcher.watch { event in
            if event.knownKind == .step, event.id == id, let progress = event.progress { steps.append(progress) }
            if event.knownKind == .preview, event.id == id { previews.append(event) }
            return steps.count < 3 || previews.isEmpty
        }
        watcher.close()
        XCTAssertGreaterThanOrEqual(steps.count, 3)
        // snapshots: 2: a preview event on every second step, naming the PNG the daemon wrote.
        let preview = try XCTUnwrap(previews.first)
        let step = try XCTUnwrap(preview.progress?.step)
        XCTAssertEqual(step % 2, 0)
        let path = try XCTUnwrap(preview.preview)
        XCTAssertTrue(path.hasSuffix(String(format: "/steps/image-%03d-step-%03d.png", (preview.progress?.image ?? 0) + 1, step)), path)
        let png = try XCTUnwrap(FileManager.default.contents(atPath: path), "the preview file exists when its event arrives")
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        XCTAssertEqual(steps.map(\.completedSteps), steps.map(\.completedSteps).sorted(), "progress only grows")
        XCTAssertTrue(steps.allSatisfy { $0.total == 150 && $0.count == 16 }, "\(steps)")
        XCTAssertNotNil(steps.last?.rate, "the daemon reports its speed")
        // The answer says the job is being cancelled, not just "running" (issue 21).
        let (cancelStatus, cancelOut, cancelErr) = try daemon.ctl(["cancel", id])
        XCTAssertEqual(cancelStatus, 0, cancelErr)
        XCTAssertTrue(cancelOut.hasSuffix(": running, cancelling (it stops after the current step)\n"), cancelOut)
        try daemon.waitUntil("the running job is cancelled") {
            try daemon.queue(all: true).first { $0["id"] as? String == id }?["state"] as? String == "cancelled"
        }
    }

    func testDaemonDownExits69AndUnreachableSocketExits77() throws {
        try requireRoot()
        let daemon = try RunningDaemon()
        try daemon.start()
        // Not in the socket's group: the message names it.
        XCTAssertEqual(chmod(daemon.root, 0o755), 0)
        let (denied, _, deniedErr) = try daemon.ctl(["status"], asUID: 65534)
        XCTAssertEqual(denied, 77, deniedErr)
        XCTAssertTrue(deniedErr.contains("the diffusiond control socket belongs to group 'root' (a daemon started by hand as root"), deniedErr)
        XCTAssertFalse(deniedErr.contains("join the group 'root'"), deniedErr)

        XCTAssertEqual(daemon.stop(), 0, "SIGTERM stops the daemon cleanly")
        let (down, _, downErr) = try daemon.ctl(["status"])
        XCTAssertEqual(down, 69)
        XCTAssertTrue(downErr.contains("not running") && downErr.contains(daemon.socket), downErr)
    }

    func testAnotherUserCannotChangeRootsJobsOrPauseButCanRead() throws {
        try requireRoot()
        let daemon = try RunningDaemon()
        try daemon.start()
        defer { daemon.stop() }
        XCTAssertEqual(try daemon.ctl(["pause"]).0, 0)
        let id = try submit(daemon, "mine.yaml", "prompt: root's job\n", expecting: 1)
        // Give the group nogroup (gid 65534) access to the socket, as membership in the
        // service group would.
        XCTAssertEqual(chmod(daemon.root, 0o755), 0)
        XCTAssertEqual(chown(daemon.root + "/run", 0, 65534), 0)
        XCTAssertEqual(chown(daemon.socket, 0, 65534), 0)

        XCTAssertEqual(try daemon.ctl(["queue"], asUID: 65534).0, 0)
        for arguments in [["cancel", id], ["hold", id], ["priority", id, "90"], ["pause"], ["resume"]] {
            let (status, _, err) = try daemon.ctl(arguments, asUID: 65534)
            XCTAssertEqual(status, 77, "\(arguments): \(err)")
        }
        let job = try XCTUnwrap(try daemon.queue().first)
        XCTAssertEqual(job["state"] as? String, "queued")
        XCTAssertEqual(job["priority"] as? Int, 50)
    }

    func testSocketActivationUsesThePassedSocket() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-socket-activate") else {
            throw XCTSkip("systemd-socket-activate(1) is not installed")
        }
        let daemon = try RunningDaemon()
        let activated = daemon.root + "/activated.sock"
        try daemon.start(activatedOn: activated)
        let status = try ControlSession(socketPath: activated).status()
        XCTAssertFalse(status.paused)
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.socket),
                       "with a passed socket the configured path is not bound")
        XCTAssertTrue(daemon.log.contains("passed by systemd"), daemon.log)
        XCTAssertEqual(daemon.stop(), 0)
        var info = stat()
        XCTAssertEqual(lstat(activated, &info), 0, "the daemon leaves systemd's socket file alone")
    }
}
