import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `--oneshot --shard` and resume, as black boxes: tasks killed at random points and run
/// again end with exactly the outbox one uninterrupted run makes; nothing is made twice, no
/// earlier result is deleted, and `--status` names the tasks to resubmit.
final class ShardResumeTests: XCTestCase {
    var dir: URL!
    var model: String!
    var files: [String] = []

    override func setUpWithError() throws {
        model = try XCTUnwrap(DaemonHarness.fixtureModel, "Tests/Fixtures/tiny-sd1 is missing").path
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("shards-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Two jobs, 12 images: one job seeded, one not (its seed is derived, the same in every task).
        let jobs = [("cats", "prompt: a cat\nwidth: 32\nheight: 32\nsteps: 4\ncount: 7\nseed: 11\n"),
                    ("dogs", "prompt: a dog\nnegative_prompt: blur\nwidth: 32\nheight: 32\nsteps: 3\ncount: 5\n")]
        files = try jobs.map { name, text in
            let url = dir.appendingPathComponent(name + ".yaml")
            try text.write(to: url, atomically: true, encoding: .utf8)
            return url.path
        }
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    func arguments(_ outbox: URL, _ extra: [String] = []) -> [String] {
        ["--oneshot"] + files + ["--outbox", outbox.path, "--model", model, "--threads", "1"] + extra
    }

    /// Starts diffusiond with `arguments`, standard error to `log`.
    func start(_ arguments: [String], log: URL) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try DaemonHarness.binary())
        p.arguments = arguments
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        p.standardError = handle
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Every file under `root`, relative path → bytes.
    func tree(_ root: URL) -> [String: Data] {
        var files: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: root.path)
        while let path = enumerator?.nextObject() as? String {
            var isDir: ObjCBool = false
            let full = root.appendingPathComponent(path).path
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue {
                files[path] = FileManager.default.contents(atPath: full)
            }
        }
        return files
    }

    func inode(_ path: String) -> UInt64? {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_ino) : nil
    }

    func json(_ url: URL) throws -> [String: Any] {
        let data = try Data(contentsOf: url)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any], url.path)
    }

    /// Three tasks run side by side into one outbox; each is killed (SIGKILL, or SIGTERM as
    /// scancel sends) at a random point, twice, then run to its end. The outbox equals one
    /// uninterrupted unsharded run's byte for byte in every image, each image file was written
    /// once (its inode never changes once it exists), no temporary file is left, and each
    /// job's merged result.json lists every image with its seed.
    func testTasksKilledAtRandomPointsAndRerunEndWithTheOutcomeOfOneCleanRun() throws {
        let reference = dir.appendingPathComponent("reference")
        let clock = Date()
        let (status, err) = try DaemonHarness.runDiffusiond(arguments(reference))
        XCTAssertEqual(status, 0, err)
        let span = Date().timeIntervalSince(clock)
        let expected = tree(reference).filter { $0.key.hasSuffix(".png") }
        XCTAssertEqual(expected.keys.sorted(), (1...7).map { String(format: "cats/image-%03d.png", $0) }
                       + (1...5).map { String(format: "dogs/image-%03d.png", $0) })

        var rng = ShardSplitTests.SplitMix(state: 0x5EED_0019)
        for trial in 0..<2 {
            let outbox = dir.appendingPathComponent("trial-\(trial)")
            var inodes: [String: UInt64] = [:]
            func checkInodes(_ when: String) {
                for name in tree(outbox).keys where name.hasSuffix(".png") && !name.contains("/steps/") {
                    guard let now = inode(outbox.appendingPathComponent(name).path) else { continue }
                    if let first = inodes[name] {
                        XCTAssertEqual(now, first, "trial \(trial): \(name) was written again (\(when))")
                    } else {
                        inodes[name] = now
                    }
                }
            }
            for round in 0..<3 {
                let killing = round < 2
                var running: [(Process, Double, Int32)] = []
                for k in 0..<3 {
                    let log = dir.appendingPathComponent("trial-\(trial)-task-\(k).log")
                    let p = try start(arguments(outbox, ["--shard", "\(k)/3"]), log: log)
                    // Anywhere from start-up to past the end of a whole run's span.
                    running.append((p, Double.random(in: 0...(span * 1.2), using: &rng), Bool.random(using: &rng) ? SIGKILL : SIGTERM))
                }
                if killing {
                    let started = Date()
                    for (p, delay, signal) in running.sorted(by: { $0.1 < $1.1 }) {
                        let wait = delay - Date().timeIntervalSince(started)
                        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                        if p.isRunning { kill(p.processIdentifier, signal) }
                    }
                }
                for (k, (p, _, _)) in running.enumerated() {
                    p.waitUntilExit()
                    if !killing {
                        let log = (try? String(contentsOf: dir.appendingPathComponent("trial-\(trial)-task-\(k).log"), encoding: .utf8)) ?? ""
                        XCTAssertEqual(p.terminationStatus, 0, "trial \(trial): task \(k)/3's last run\n\(log)")
                    }
                }
                checkInodes("round \(round)")
            }
            let got = tree(outbox)
            XCTAssertEqual(got.filter { $0.key.hasSuffix(".png") }, expected, "trial \(trial): the images are the clean run's")
            XCTAssertEqual(got.keys.filter { $0.contains(".tmp-") }, [], "trial \(trial): temporary files left")
            for (job, count) in [("cats", 7), ("dogs", 5)] {
                let result = try json(outbox.appendingPathComponent("\(job)/result.json"))
                let clean = try json(reference.appendingPathComponent("\(job)/result.json"))
                XCTAssertEqual(result["status"] as? String, "done", "trial \(trial) \(job)")
                XCTAssertEqual(result["shards"] as? Int, 3)
                let images = try XCTUnwrap(result["images"] as? [[String: Any]])
                let cleanImages = try XCTUnwrap(clean["images"] as? [[String: Any]])
                XCTAssertEqual(images.count, count)
                XCTAssertEqual(images.map { $0["file"] as? String }, cleanImages.map { $0["file"] as? String })
                XCTAssertEqual(images.map { $0["seed"] as? UInt64 }, cleanImages.map { $0["seed"] as? UInt64 })
                for key in ["prompt", "negative_prompt", "seed", "count", "steps", "width", "height", "model", "sampler"] {
                    XCTAssertEqual(result[key] as? NSObject, clean[key] as? NSObject, "trial \(trial) \(job): \(key)")
                }
                for k in 0..<3 {
                    let record = try json(outbox.appendingPathComponent("\(job)/shards/\(k)-of-3.json"))
                    XCTAssertEqual(record["status"] as? String, "done", "trial \(trial) \(job) task \(k)")
                    XCTAssertTrue((1...3).contains(record["attempts"] as? Int ?? 0), "\(record)")
                }
            }
        }
    }

    /// A run into an outbox that holds results never deletes them: the same job's complete
    /// images are kept as they are (nothing is made or rewritten), and a different job in the
    /// same folder is refused before anything is written.
    func testARerunKeepsEarlierResultsAndAnotherJobsFolderIsRefusedUntouched() throws {
        let outbox = dir.appendingPathComponent("out")
        XCTAssertEqual(try DaemonHarness.runDiffusiond(arguments(outbox)).status, 0)
        let before = tree(outbox)
        let inodes = before.keys.map { inode(outbox.appendingPathComponent($0).path) }
        let (again, againErr) = try DaemonHarness.runDiffusiond(arguments(outbox))
        XCTAssertEqual(again, 0, againErr)
        XCTAssertFalse(againErr.contains("loading model"), "nothing to make, no model loaded:\n\(againErr)")
        XCTAssertFalse(againErr.contains("wrote "), againErr)
        let after = tree(outbox)
        XCTAssertEqual(after.filter { !$0.key.contains("shards/") }, before.filter { !$0.key.contains("shards/") })
        XCTAssertEqual(before.keys.filter { !$0.contains("shards/") }.map { inode(outbox.appendingPathComponent($0).path) },
                       zip(before.keys, inodes).filter { !$0.0.contains("shards/") }.map(\.1))

        // The same file name with another prompt: refused, and nothing in the outbox changes.
        try "prompt: a bird\nwidth: 32\nheight: 32\nsteps: 4\ncount: 7\nseed: 11\n".write(toFile: files[0], atomically: true, encoding: .utf8)
        let (status, err) = try DaemonHarness.runDiffusiond(arguments(outbox))
        XCTAssertEqual(status, 73, err)
        XCTAssertTrue(err.contains("\(outbox.path)/cats/result.json records another job (prompt differ)"), err)
        XCTAssertTrue(err.contains("nothing was changed"), err)
        XCTAssertEqual(tree(outbox), after)

        // Images no record accounts for are not taken over either.
        let stray = dir.appendingPathComponent("stray")
        try FileManager.default.createDirectory(at: stray.appendingPathComponent("dogs"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: outbox.appendingPathComponent("dogs/image-001.png"),
                                         to: stray.appendingPathComponent("dogs/image-001.png"))
        let (strayStatus, strayErr) = try DaemonHarness.runDiffusiond(arguments(stray))
        XCTAssertEqual(strayStatus, 73, strayErr)
        XCTAssertTrue(strayErr.contains("dogs/image-001.png is there, but no result.json or shards/ record says which job made it"), strayErr)
        XCTAssertEqual(tree(stray).keys.sorted(), ["dogs/image-001.png"])
    }

    /// `--status` names done, unfinished and missing tasks and the `--array=` to resubmit,
    /// exits 75 until the batch is complete, then 0.
    func testStatusListsWhatIsMissingAndWhichTasksToResubmit() throws {
        let outbox = dir.appendingPathComponent("out")
        for k in [0, 2] {
            let (status, err) = try DaemonHarness.runDiffusiond(arguments(outbox, ["--shard", "\(k)/3"]))
            XCTAssertEqual(status, 0, err)
        }
        let (partial, report) = try status(outbox)
        XCTAssertEqual(partial, 75, report)
        // Task 1 of 3 owns cats 2, 5 (positions 1, 4) and dogs 1, 4 (positions 7, 10).
        let lines = report.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "\(outbox.path): 2 job(s), 12 image(s) in 3 task(s): 8 done, 4 missing")
        XCTAssertTrue(lines.contains("job cats: 5/7 images (missing image-002.png, image-005.png), no result.json yet"), report)
        XCTAssertTrue(lines.contains("job dogs: 3/5 images (missing image-001.png, image-004.png), no result.json yet"), report)
        XCTAssertTrue(lines.contains { $0.hasPrefix("task 0/3: done, 4/4 images (on ") }, report)
        XCTAssertTrue(lines.contains("task 1/3: not started, 0/4 images"), report)
        XCTAssertTrue(lines.contains { $0.hasPrefix("task 2/3: done, 4/4 images") }, report)
        XCTAssertEqual(lines.last, "resubmit: --array=1")

        let (status1, err1) = try DaemonHarness.runDiffusiond(arguments(outbox, ["--shard", "1/3"]))
        XCTAssertEqual(status1, 0, err1)
        let (complete, final) = try status(outbox)
        XCTAssertEqual(complete, 0, final)
        XCTAssertTrue(final.contains("job cats: 7/7 images, result.json done\n"), final)
        XCTAssertTrue(final.contains("job dogs: 5/5 images, result.json done\n"), final)
        XCTAssertFalse(final.contains("resubmit"), final)
    }

    /// A task whose model cannot load fails; once every task of the job has stopped, the
    /// merged result.json says `failed`, naming the task, its error and the missing images.
    /// Run again with the model back, the task finishes the job and result.json says `done`.
    func testAFailedTaskMakesAFailedResultUntilItIsRunAgain() throws {
        let copy = dir.appendingPathComponent("tiny-sd1")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: model), to: copy)
        model = copy.path
        let weights = copy.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")
        let aside = dir.appendingPathComponent("unet.safetensors")
        let outbox = dir.appendingPathComponent("out")
        XCTAssertEqual(try DaemonHarness.runDiffusiond(arguments(outbox, ["--shard", "1/2"])).status, 0)
        try FileManager.default.moveItem(at: weights, to: aside)
        let (failed, err) = try DaemonHarness.runDiffusiond(arguments(outbox, ["--shard", "0/2"]))
        XCTAssertEqual(failed, 70, err)
        let result = try json(outbox.appendingPathComponent("cats/result.json"))
        XCTAssertEqual(result["status"] as? String, "failed")
        let error = try XCTUnwrap(result["error"] as? String)
        XCTAssertTrue(error.hasPrefix("task 0/2 failed: cannot load model tiny-sd1"), error)
        // Task 0 of 2 owns cats 1, 3, 5, 7.
        XCTAssertTrue(error.hasSuffix("; 4 of 7 images missing (image-001.png, image-003.png, image-005.png, image-007.png)"), error)
        XCTAssertEqual((result["images"] as? [[String: Any]])?.compactMap { $0["file"] as? String },
                       ["image-002.png", "image-004.png", "image-006.png"])
        let record = try json(outbox.appendingPathComponent("cats/shards/0-of-2.json"))
        XCTAssertEqual(record["status"] as? String, "failed")

        try FileManager.default.moveItem(at: aside, to: weights)
        let (again, againErr) = try DaemonHarness.runDiffusiond(arguments(outbox, ["--shard", "0/2"]))
        XCTAssertEqual(again, 0, againErr)
        for (job, count) in [("cats", 7), ("dogs", 5)] {
            let done = try json(outbox.appendingPathComponent("\(job)/result.json"))
            XCTAssertEqual(done["status"] as? String, "done", job)
            XCTAssertNil(done["error"], job)
            XCTAssertEqual((done["images"] as? [[String: Any]])?.count, count, job)
        }
        XCTAssertEqual(try json(outbox.appendingPathComponent("cats/shards/0-of-2.json"))["attempts"] as? Int, 2)
    }

    /// Shard options that name no task are usage errors (64) that say what to give, before
    /// any file is read or written.
    func testShardOptionsThatNameNoTaskAreUsageErrors() throws {
        let outbox = dir.appendingPathComponent("out")
        let noScheduler = ["SLURM_ARRAY_TASK_ID": "", "JOB_COMPLETION_INDEX": ""]
        let cases: [([String], [String: String], String)] = [
            (["--shard", "3/3"], [:], "task 3 is outside 0…2: tasks of 3 count from 0 (0/3 … 2/3)"),
            (["--shard", "two"], [:], "--shard needs K/N (task K of N, K from 0) or auto, not 'two'"),
            (["--shard", "auto"], noScheduler, "--shard auto: neither SLURM_ARRAY_TASK_ID"),
            (["--shard", "auto"], ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "2",
                                   "SLURM_ARRAY_TASK_MAX": "5", "JOB_COMPLETION_INDEX": ""], "give --shard-count N and number the array 0…N-1"),
            (["--shard", "1/3", "--shard-count", "3"], [:], "--shard-count goes with --shard auto or --status"),
            (["--status", outbox.path, "--shard", "1/3"], [:], "--status lists every task: give it --shard-count N, not --shard"),
        ]
        for (extra, environment, message) in cases {
            let (status, err) = try DaemonHarness.runDiffusiond(arguments(outbox, extra), environment: environment)
            XCTAssertEqual(status, 64, "\(extra): \(err)")
            XCTAssertTrue(err.contains(message), "\(extra): \(err)")
        }
        let (status, err) = try DaemonHarness.runDiffusiond(["--shard", "0/2", "--outbox", outbox.path])
        XCTAssertEqual(status, 64, err)
        XCTAssertTrue(err.contains("--shard, --shard-count and --status go with --oneshot"), err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: outbox.path), "nothing written")
        // A Slurm array task: the same as --shard 2/3, recorded with its Slurm name.
        let slurm = ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "0",
                     "SLURM_ARRAY_TASK_MAX": "2", "SLURM_ARRAY_JOB_ID": "77", "JOB_COMPLETION_INDEX": ""]
        let (auto, autoErr) = try DaemonHarness.runDiffusiond(arguments(outbox, ["--shard", "auto"]), environment: slurm)
        XCTAssertEqual(auto, 0, autoErr)
        let record = try json(outbox.appendingPathComponent("cats/shards/2-of-3.json"))
        XCTAssertEqual(record["scheduler_task"] as? String, "slurm 77_2")
        XCTAssertEqual(tree(outbox).keys.filter { $0.hasSuffix(".png") }.sorted(),
                       ["cats/image-003.png", "cats/image-006.png", "dogs/image-002.png", "dogs/image-005.png"])
    }

    /// Runs `diffusiond --oneshot --status OUTBOX FILES… --shard-count 3`: exit status and stdout.
    func status(_ outbox: URL) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try DaemonHarness.binary())
        p.arguments = ["--oneshot", "--status", outbox.path] + files + ["--model", model, "--shard-count", "3"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }
}
