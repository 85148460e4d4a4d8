@testable import Daemon
import ControlProtocol
import Foundation
import Jobs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Restarts: leftover claims, jobs that were running, poison jobs, and SIGKILL at random
/// moments. Every dropped file must end in exactly one place.
final class RecoveryTests: XCTestCase {
    func record(_ number: Int, state: JobState, attempts: Int, prompt: String) throws -> JobRecord {
        var spec = try XCTUnwrap(try JobFileParser().parse(bytes: Array("prompt: \(prompt)\nseed: 3\nwidth: 32\nheight: 32\nsteps: 2\n".utf8), file: "x").first)
        spec.sourceText = "prompt: \(prompt)\n"
        let id = JobRecord.id(number: number)
        return JobRecord(id: id, number: number, spec: spec, sourceFile: "\(prompt).yaml", owner: getuid(), submitted: 1,
                         state: state, attempts: attempts, folder: id, started: 2, finished: nil, error: nil, model: "tiny")
    }

    /// Jobs left running by a daemon that died (kill -9, a crash, a power cut) are queued
    /// again without a strike: the engine ran in the worker process, so the daemon's death is
    /// no fault of theirs, however often it happened. A job whose result.json was written
    /// keeps that outcome.
    func testRunningJobsAreQueuedAgainWithoutAStrikeAndFinishedOnesAreNotRerun() throws {
        let daemon = try DaemonHarness()
        try FileManager.default.createDirectory(at: daemon.state, withIntermediateDirectories: true)
        // The state a daemon leaves when killed: three jobs marked running.
        let queue = try JobQueue(stateDirectory: daemon.state, keepHistory: 100)
        let again = try record(1, state: .running, attempts: 1, prompt: "again")
        let thrice = try record(2, state: .running, attempts: 3, prompt: "thrice")
        let finished = try record(3, state: .running, attempts: 1, prompt: "finished")
        try queue.add([again, thrice, finished])
        // Job 3 had written its result.json when the daemon died.
        var done = finished
        done.state = .done
        try Outbox(root: daemon.outbox).writeResult(done, images: [], seconds: 1)

        try daemon.start()
        daemon.waitUntil("three results") { daemon.results.count == 3 }
        XCTAssertEqual(daemon.stop(), 0)
        let results = Dictionary(uniqueKeysWithValues: daemon.results.map { ($0.result.id, $0.result) })
        XCTAssertEqual(results["000001"]?.status, "done")
        XCTAssertEqual(results["000001"]?.attempts, 1, "the daemon's death gave its attempt back")
        XCTAssertEqual(results["000002"]?.status, "done", "three deaths of the daemon strike nothing")
        XCTAssertEqual(results["000002"]?.attempts, 3)
        XCTAssertEqual(results["000003"]?.status, "done")
        XCTAssertEqual(daemon.startOrder, ["000001", "000002"], "the finished job does not run again")
        XCTAssertTrue(daemon.log.contains("job 000001 was running when the daemon stopped; queued again without a strike (0 so far)"))
        XCTAssertTrue(daemon.log.contains("job 000002 was running when the daemon stopped; queued again without a strike (2 so far)"))
    }

    func testClaimLeftByACrashIsFinishedAtStart() throws {
        let daemon = try DaemonHarness()
        let claimed = daemon.state.appendingPathComponent("claimed")
        try FileManager.default.createDirectory(at: claimed, withIntermediateDirectories: true)
        try "prompt: left behind\n".write(to: claimed.appendingPathComponent("7~left.yaml"), atomically: true, encoding: .utf8)
        try "steps: 3\n".write(to: claimed.appendingPathComponent("8~bad.yaml"), atomically: true, encoding: .utf8)
        try daemon.start()
        daemon.waitUntil("claim finished") { daemon.results.count == 1 && daemon.rejectedNames == ["bad.yaml"] }
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual(daemon.results.first?.folder, "000007")
        XCTAssertEqual(daemon.results.first?.result.source, "left.yaml")
        XCTAssertEqual(daemon.rejectionReason("bad.yaml"), "bad.yaml:1:1: field 'prompt': required field is missing")
        XCTAssertEqual(daemon.names(claimed), [])
    }

    /// A leftover claim whose number is below numbers already journaled (its rejection failed
    /// earlier, later claims went on) is renumbered before its jobs are journaled; a leftover
    /// claim whose job is in the queue was journaled and is only removed.
    func testLeftoverClaimsAreRenumberedOrRemoved() throws {
        let daemon = try DaemonHarness()
        let claimed = daemon.state.appendingPathComponent("claimed")
        try FileManager.default.createDirectory(at: claimed, withIntermediateDirectories: true)
        let queue = try JobQueue(stateDirectory: daemon.state, keepHistory: 100)
        var first = try record(1, state: .queued, attempts: 0, prompt: "first")
        first.state = .held
        try queue.add([first, try record(3, state: .held, attempts: 0, prompt: "third")])
        try "prompt: gap\n".write(to: claimed.appendingPathComponent("2~gap.yaml"), atomically: true, encoding: .utf8)
        try "prompt: first\n".write(to: claimed.appendingPathComponent("1~first.yaml"), atomically: true, encoding: .utf8)
        try daemon.start()
        daemon.waitUntil("gap.yaml ran") { daemon.results.count == 1 }
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual(daemon.results.first?.folder, "000004")
        XCTAssertEqual(daemon.results.first?.result.source, "gap.yaml")
        XCTAssertEqual(daemon.names(claimed), [])
        XCTAssertEqual(daemon.startOrder, ["000004"], "the held jobs stay held; first.yaml is not queued twice")
    }

    /// 20 runs, each killed with SIGKILL after a random delay while files arrive; then one
    /// clean run. Every file ends in exactly one place, no job completes twice, and every
    /// PNG in the outbox is whole.
    /// Kills the daemon with SIGKILL at random moments while files arrive: 20 times in the
    /// test suite (CI), `DIFFUSIOND_SOAK_KILLS` times under `make soak KILLS=N`. Every file
    /// must end in exactly one place.
    func testSIGKILLAtRandomMomentsLosesAndDuplicatesNothing() throws {
        let kills = ProcessInfo.processInfo.environment["DIFFUSIOND_SOAK_KILLS"].flatMap(Int.init) ?? 20
        XCTAssertGreaterThan(kills, 0, "DIFFUSIOND_SOAK_KILLS must be a positive number")
        let daemon = try DaemonHarness()
        var rng = SplitMix(seed: 20261125)
        var good: [String: Int] = [:]   // file → documents
        var bad: [String] = []
        for run in 0..<kills {
            try daemon.drop("r\(run)-a.yaml", "prompt: run \(run) a\nsnapshots: 1\n")
            try daemon.drop("r\(run)-b.yaml", "prompt: run \(run) b\npriority: high\ncount: 2\n---\nprompt: run \(run) c\n")
            try daemon.drop("r\(run)-bad.yaml", "prompt: run \(run)\nsteps: many\n")
            good["r\(run)-a.yaml"] = 1
            good["r\(run)-b.yaml"] = 2
            bad.append("r\(run)-bad.yaml")
            try daemon.start(waitReady: false)
            usleep(UInt32(rng.next() % 400_000))
            if run % 2 == 0 {
                try daemon.drop("r\(run)-late.yaml", "prompt: late \(run)\n")
                good["r\(run)-late.yaml"] = 1
            } else {
                for k in 0..<8 {
                    try daemon.drop("r\(run)-late-bad\(k).yaml", "prompt: late \(run)\nsteps: many\n")
                    bad.append("r\(run)-late-bad\(k).yaml")
                }
            }
            usleep(UInt32(rng.next() % 200_000))
            XCTAssertEqual(daemon.stop(SIGKILL), 128 + SIGKILL)
        }
        try daemon.start()
        let expectedJobs = good.values.reduce(0, +)
        daemon.waitUntil("every job finished", limit: 600 * Double(max(1, kills / 20))) {
            daemon.results.count == expectedJobs && daemon.rejectedNames.count == bad.count
        }
        XCTAssertEqual(daemon.stop(), 0)
        let interrupted = daemon.log.components(separatedBy: "was running when the daemon stopped").count - 1
        let reclaimed = daemon.log.components(separatedBy: "finishing the intake of").count - 1
        print("crash test: \(kills) SIGKILLs, \(good.count + bad.count) files, \(expectedJobs) jobs; "
              + "\(interrupted) running job(s) and \(reclaimed) claim(s) recovered after SIGKILL")

        // Exactly one place per file (and per document).
        var seen: [String: Int] = [:]
        for (_, result) in daemon.results { seen["\(result.source)#\(result.document)", default: 0] += 1 }
        for (file, documents) in good {
            for d in 1...documents { XCTAssertEqual(seen["\(file)#\(d)"], 1, "\(file) document \(d)") }
        }
        XCTAssertEqual(seen.count, expectedJobs)
        XCTAssertEqual(Set(daemon.rejectedNames), Set(bad))
        for name in bad {
            XCTAssertEqual(daemon.rejectionReason(name), "\(name):2:8: field 'steps': expected a whole number from 1 to 150, got \"many\"")
        }
        XCTAssertEqual(daemon.names(daemon.inbox), [])
        XCTAssertEqual(daemon.names(daemon.state.appendingPathComponent("claimed")), [])
        // No job completed twice: one "done"/"failed" line at most per job across all runs.
        var completions: [String: Int] = [:]
        for line in daemon.log.split(separator: "\n") where (line.hasPrefix("<6>job ") && line.contains(" done → "))
            || (line.hasPrefix("<3>job ") && line.contains(" failed: ")) {
            completions[String(line.split(separator: " ")[1]), default: 0] += 1
        }
        XCTAssertTrue(completions.values.allSatisfy { $0 == 1 }, "\(completions.filter { $0.value > 1 })")
        // No half-written file: every PNG parses to IEND with good CRCs; no temporaries left.
        let walker = FileManager.default.enumerator(atPath: daemon.outbox.path)
        while let path = walker?.nextObject() as? String {
            XCTAssertFalse(path.contains(".tmp-"), "leftover temporary \(path)")
            if path.hasSuffix(".png") {
                let bytes = [UInt8](try Data(contentsOf: daemon.outbox.appendingPathComponent(path)))
                XCTAssertNoThrow(try PNGChunks.read(bytes), path)
            }
        }
        for (_, result) in daemon.results {
            if result.status == "failed" {
                XCTAssertTrue(result.error?.contains("3 times") == true, result.error ?? "")
            }
        }
    }
}

/// Small deterministic generator for the crash schedule (SplitMix64, Steele et al. 2014).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
