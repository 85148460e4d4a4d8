import Daemon
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The engine runs in a worker process: a fault strikes the job it was running, never the
/// daemon; the daemon's own death strikes nothing; the daemon never maps a model.
final class WorkerIsolationTests: XCTestCase {
    /// Pids of the worker processes the daemon started, in order, from its log.
    func workerPids(_ daemon: DaemonHarness) -> [pid_t] {
        daemon.log.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("<6>worker process "), line.hasSuffix(" started") else { return nil }
            return pid_t(line.dropFirst("<6>worker process ".count).prefix(while: { $0 != " " }))
        }
    }

    /// Whether `pid` is still a live process (not gone, not a zombie).
    func isAlive(_ pid: pid_t) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        return !status.contains("State:\tZ")
    }

    func stepCount(_ daemon: DaemonHarness, _ id: String) -> Int {
        daemon.names(daemon.outbox.appendingPathComponent("\(id)/steps")).count
    }

    /// A job whose prompt makes the worker raise SIGSEGV (test-only switch) is struck three
    /// times, each time with a fresh worker, then failed naming the signal; the jobs around
    /// it finish, and the daemon is the same process throughout.
    func testWorkerSegfaultStrikesTheJobThreeTimesWhileOtherJobsFinish() throws {
        let daemon = try DaemonHarness()
        try daemon.start(environment: ["DIFFUSIOND_TEST_FAULTS": "1"])
        let daemonPid = try XCTUnwrap(daemon.process?.processIdentifier)
        try daemon.drop("a.yaml", "prompt: a cat\nseed: 1\n")
        try daemon.drop("poison.yaml", "prompt: a cat test-fault:SIGSEGV\npriority: urgent\nseed: 2\n")
        try daemon.drop("b.yaml", "prompt: a dog\nseed: 3\n")
        daemon.waitUntil("three results") { daemon.results.count == 3 }
        XCTAssertEqual(daemon.process?.processIdentifier, daemonPid)
        XCTAssertEqual(daemon.process?.isRunning, true, "the daemon survives its worker's faults")
        XCTAssertEqual(daemon.stop(), 0)

        let results = Dictionary(uniqueKeysWithValues: daemon.results.map { ($0.result.source, $0.result) })
        XCTAssertEqual(results["a.yaml"]?.status, "done")
        XCTAssertEqual(results["b.yaml"]?.status, "done")
        XCTAssertEqual(results["a.yaml"]?.attempts, 1)
        XCTAssertEqual(results["poison.yaml"]?.status, "failed")
        XCTAssertEqual(results["poison.yaml"]?.attempts, 3)
        XCTAssertEqual(results["poison.yaml"]?.error,
                       "the worker process died of SIGSEGV 3 times while running this job; not retried")
        let poisonID = try XCTUnwrap(daemon.results.first { $0.result.source == "poison.yaml" }?.result.id)
        XCTAssertEqual(daemon.startOrder.filter { $0 == poisonID }.count, 3, "run three times, then not again")
        XCTAssertTrue(daemon.log.contains("job \(poisonID): the worker process died of SIGSEGV while running it (strike 1 of 3)"))
        XCTAssertTrue(daemon.log.contains("job \(poisonID): the worker process died of SIGSEGV while running it (strike 2 of 3)"))
        XCTAssertEqual(workerPids(daemon).count, 4, "one worker at start and a fresh one after each fault")
        XCTAssertEqual(Set(workerPids(daemon)).count, 4)
    }

    /// Without DIFFUSIOND_TEST_FAULTS=1 the fault marker is an ordinary prompt.
    func testFaultSwitchIsOffWithoutTheTestEnvironment() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        try daemon.drop("poison.yaml", "prompt: a cat test-fault:SIGSEGV\n")
        daemon.waitUntil("result") { daemon.results.count == 1 }
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual(daemon.results.first?.result.status, "done")
        XCTAssertEqual(workerPids(daemon).count, 1)
    }

    /// Three `kill -9` of the daemon while a job runs strike nothing: the job is queued again
    /// at each start (its attempt given back) and finishes; each time the orphaned worker
    /// leaves at once.
    func testOutsideKillsOfTheDaemonStrikeNothing() throws {
        let daemon = try DaemonHarness()
        try daemon.drop("long.yaml", "prompt: a cat\nsteps: 150\nsnapshots: 1\nseed: 4\n")
        for kill in 1...3 {
            let before = stepCount(daemon, "000001")
            try daemon.start()
            daemon.waitUntil("run \(kill) made a step") { stepCount(daemon, "000001") > before }
            let worker = try XCTUnwrap(workerPids(daemon).last)
            XCTAssertEqual(daemon.stop(SIGKILL), 128 + SIGKILL)
            daemon.waitUntil("worker \(worker) left with its daemon", limit: 10) { !isAlive(worker) }
        }
        try daemon.start()
        daemon.waitUntil("the job finished", limit: 600) { daemon.results.count == 1 }
        XCTAssertEqual(daemon.stop(), 0)
        let result = try XCTUnwrap(daemon.results.first?.result)
        XCTAssertEqual(result.status, "done")
        XCTAssertEqual(result.attempts, 1, "no strike for the daemon's deaths")
        XCTAssertEqual(daemon.startOrder, ["000001", "000001", "000001", "000001"])
        XCTAssertEqual(daemon.log.components(separatedBy: "job 000001 was running when the daemon stopped; queued again without a strike (0 so far)").count - 1, 3)
        XCTAssertFalse(daemon.log.contains("died of"))
    }

    /// Resident memory of `pid` in KiB.
    func residentKiB(_ pid: pid_t) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    /// While a job runs on the built-in model (16 MB of weights) the daemon's memory does not
    /// grow by anything like the model and it maps no model file, while the worker holds the
    /// weights; the worker is the OOM killer's first choice. A SIGKILL of the worker from
    /// outside (as the OOM killer sends) is a strike, and SIGTERM to daemon and worker
    /// together (systemd's stop signals the whole cgroup) is a clean stop that requeues the job.
    func testDaemonNeverLoadsTheModelAndWorkerDeathsAreSortedOut() throws {
        let daemon = try DaemonHarness()
        let model = try XCTUnwrap(DaemonHarness.fixtureModel, "the tiny-sd1 fixture is missing")
        let shapes = DaemonHarness.repository.appendingPathComponent("models/shapes")
        try """
        inbox: spool/inbox
        outbox: spool/outbox
        state: spool/state
        socket: run/ctl.sock
        threads: 1
        models:
          tiny: \(model.path)
          shapes: \(shapes.path)
        """.write(to: daemon.configURL, atomically: true, encoding: .utf8)
        let weightBytes = try ["text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
                               "vae/diffusion_pytorch_model.safetensors"].map {
            try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: shapes.appendingPathComponent($0).path)[.size] as? Int)
        }.reduce(0, +)
        XCTAssertGreaterThan(weightBytes, 15 << 20)
        try daemon.start()
        let daemonPid = try XCTUnwrap(daemon.process?.processIdentifier)
        let idleKiB = try XCTUnwrap(residentKiB(daemonPid))
        try daemon.drop("long.yaml", "prompt: a red circle\nmodel: shapes\nwidth: 64\nheight: 64\nsteps: 100\nsnapshots: 1\nseed: 4\n")
        daemon.waitUntil("first step") { stepCount(daemon, "000001") > 0 }
        let worker = try XCTUnwrap(workerPids(daemon).first)
        let busyKiB = try XCTUnwrap(residentKiB(daemonPid))
        let workerKiB = try XCTUnwrap(residentKiB(worker))
        print("worker isolation: daemon VmRSS \(idleKiB) KiB idle, \(busyKiB) KiB while its worker (\(workerKiB) KiB) runs a job on \(weightBytes / 1024) KiB of weights")
        XCTAssertGreaterThan(workerKiB, weightBytes / 1024, "the worker holds the weights")
        XCTAssertLessThan(busyKiB - idleKiB, weightBytes / 1024 / 2, "the daemon never loads the model")
        let daemonMaps = try String(contentsOfFile: "/proc/\(daemonPid)/maps", encoding: .utf8)
        XCTAssertFalse(daemonMaps.contains(".safetensors"), "the daemon maps no model file")
        func oomScore(_ pid: pid_t) throws -> Int? {
            Int(try String(contentsOfFile: "/proc/\(pid)/oom_score_adj", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let daemonScore = try XCTUnwrap(try oomScore(daemonPid))
        XCTAssertEqual(try oomScore(worker), min(1000, daemonScore + 500))
        let status = try JSONSerialization.jsonObject(with: Data(try daemon.control(["status"]).1.utf8)) as? [String: Any]
        XCTAssertEqual(status?["loaded_model"] as? String, "shapes", "status names the model the worker holds")

        XCTAssertEqual(Glibc.kill(worker, SIGKILL), 0)
        daemon.waitUntil("a second worker runs the job") { workerPids(daemon).count == 2 && daemon.startOrder.count == 2 }
        XCTAssertTrue(daemon.log.contains("job 000001: the worker process died of SIGKILL (out of memory, or killed from outside) while running it (strike 1 of 3)"))
        let before = stepCount(daemon, "000001")
        daemon.waitUntil("the second worker steps") { stepCount(daemon, "000001") > before }
        let second = try XCTUnwrap(workerPids(daemon).last)
        XCTAssertEqual(Glibc.kill(second, SIGTERM), 0)
        XCTAssertEqual(daemon.stop(SIGTERM), 0)
        XCTAssertTrue(daemon.log.contains("job 000001 interrupted by shutdown"))
        XCTAssertFalse(isAlive(second))
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.outbox.appendingPathComponent("000001/result.json").path))

        try daemon.start()
        daemon.waitUntil("the job finished", limit: 600) { daemon.results.count == 1 }
        XCTAssertEqual(daemon.stop(), 0)
        let result = try XCTUnwrap(daemon.results.first?.result)
        XCTAssertEqual(result.status, "done")
        XCTAssertEqual(result.attempts, 2, "one strike (the SIGKILL), then the run that finished")
    }
}
