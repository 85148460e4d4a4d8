import Daemon
import Foundation
import Jobs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `diffusiond` in a temporary folder of its own (spool, config, log) and
/// drives it with files, as a user would. Waits poll the file system with a generous
/// deadline that only guards against hangs; no test asserts on time.
final class DaemonHarness {
    let root: URL
    var inbox: URL { root.appendingPathComponent("spool/inbox") }
    var outbox: URL { root.appendingPathComponent("spool/outbox") }
    var state: URL { root.appendingPathComponent("spool/state") }
    var socket: URL { root.appendingPathComponent("run/ctl.sock") }
    var configURL: URL { root.appendingPathComponent("diffusiond.yaml") }
    var logURL: URL { root.appendingPathComponent("diffusiond.log") }
    private(set) var process: Process?

    /// The products folder next to the test bundle (`.build/debug`).
    static var products: URL {
        let bundle = Bundle(for: DaemonHarness.self).bundleURL
        return bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
    }

    static func binary(_ name: String = "diffusiond") throws -> String {
        let path = products.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HarnessError("\(path) is not built; run `swift build` first")
        }
        return path
    }

    /// Runs `diffusiond` with `arguments` to its end (`--oneshot`, `--check-config`): its exit
    /// status and standard error.
    /// `environment` entries are set on top of this process's environment.
    static func runDiffusiond(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary())
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    /// Runs a system tool (mount, umount …) to its end with its output discarded; its exit status.
    static func runTool(_ path: String, _ arguments: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// Writes `jobs` (name → YAML text) as `<dir>/<name>.yaml`, in name order, and runs
    /// `diffusiond --oneshot FILES… ARGUMENTS…`; returns its exit status and stderr.
    static func oneshot(_ jobs: [String: String], in dir: URL, arguments: [String]) throws -> (Int32, String) {
        var files: [String] = []
        for (name, text) in jobs.sorted(by: { $0.key < $1.key }) {
            let file = dir.appendingPathComponent(name + ".yaml")
            try text.write(to: file, atomically: true, encoding: .utf8)
            files.append(file.path)
        }
        let log = dir.appendingPathComponent("stderr.log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else { throw HarnessError("cannot create \(log.path)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary())
        p.arguments = ["--oneshot"] + files + arguments
        p.standardError = try FileHandle(forWritingTo: log)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The tiny SD1-like fixture model, wherever the fixtures branch put it.
    static var fixtureModel: URL? {
        for path in ["Tests/Fixtures/tiny-sd1", "Tests/Fixtures/models/tiny-sd1"] {
            let url = repository.appendingPathComponent(path)
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("model_index.json").path) { return url }
        }
        return nil
    }

    init(rescanInterval: Int = 30, extraConfig: String = "") throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("diffusiond-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
        let model = DaemonHarness.fixtureModel?.path ?? "/nonexistent/tiny-sd1"
        try """
        inbox: spool/inbox
        outbox: spool/outbox
        state: spool/state
        socket: run/ctl.sock
        threads: 1
        rescan_interval: \(rescanInterval)
        models:
          tiny: \(model)
        defaults:
          width: 32
          height: 32
          steps: 2
        \(extraConfig)
        """.write(to: configURL, atomically: true, encoding: .utf8)
    }

    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: root)
    }

    // MARK: process

    /// Starts the daemon on this harness's config, with `arguments` after `--config FILE`;
    /// unless `waitReady` is false, returns once it logged that it is ready (signal handlers
    /// installed, start-up recovery done).
    func start(waitReady: Bool = true, environment: [String: String] = [:], arguments: [String] = []) throws {
        let readyBefore = log.components(separatedBy: "diffusiond ready").count
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try DaemonHarness.binary())
        p.arguments = ["--config", configURL.path] + arguments
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = nil
        for (key, value) in environment { env[key] = value }
        p.environment = env
        if !FileManager.default.fileExists(atPath: logURL.path) { _ = FileManager.default.createFile(atPath: logURL.path, contents: nil) }
        let logHandle = try FileHandle(forWritingTo: logURL)
        logHandle.seekToEndOfFile()
        p.standardError = logHandle
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        process = p
        if waitReady {
            waitUntil("the daemon is ready") { log.components(separatedBy: "diffusiond ready").count > readyBefore }
        }
    }

    /// Sends `signal` and waits for the process; returns its exit status.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM) -> Int32 {
        guard let p = process else { return -1 }
        kill(p.processIdentifier, signal)
        p.waitUntilExit()
        process = nil
        return p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    // MARK: files

    /// Drops a job file the way a careful user does: write under a dotname, then rename.
    func drop(_ name: String, _ text: String) throws {
        try drop(name, bytes: Array(text.utf8))
    }

    func drop(_ name: String, bytes: [UInt8]) throws {
        let temp = inbox.appendingPathComponent(".\(name).part")
        try Data(bytes).write(to: temp)
        guard rename(temp.path, inbox.appendingPathComponent(name).path) == 0 else {
            throw NSError(domain: "rename", code: Int(errno))
        }
    }

    /// Waits until `condition` holds; fails the test after `limit` seconds.
    @discardableResult
    func waitUntil(_ what: String, limit: Double = 120, file: StaticString = #filePath, line: UInt = #line,
                   _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(limit)
        while Date() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        XCTFail("timed out waiting for: \(what)\n--- daemon log ---\n\(log)", file: file, line: line)
        return false
    }

    func names(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
    }

    var rejectedNames: [String] { names(outbox.appendingPathComponent("rejected")).filter { !$0.hasSuffix(".error") && !$0.hasPrefix(".") } }

    func rejectionReason(_ name: String) -> String? {
        (try? String(contentsOf: outbox.appendingPathComponent("rejected/\(name).error"), encoding: .utf8))?
            .trimmingCharacters(in: .newlines)
    }

    /// Every finished job folder's result.
    var results: [(folder: String, result: JobResult)] {
        names(outbox).compactMap { folder in
            guard folder != "rejected",
                  let data = FileManager.default.contents(atPath: outbox.appendingPathComponent("\(folder)/result.json").path),
                  let result = try? JSONDecoder().decode(JobResult.self, from: data) else { return nil }
            return (folder, result)
        }
    }

    /// Order in which jobs started, from the daemon's log.
    var startOrder: [String] {
        log.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("<6>job "), line.contains(" started ") else { return nil }
            return String(line.dropFirst(7).prefix(while: { $0 != " " }))
        }
    }

    /// Runs `diffusionctl --socket … --json ARGS` and returns (status, stdout).
    func control(_ arguments: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try DaemonHarness.binary("diffusionctl"))
        p.arguments = ["--socket", socket.path, "--json"] + arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Resident memory of the daemon in KiB (from /proc).
    var residentKiB: Int? {
        guard let p = process,
              let status = try? String(contentsOfFile: "/proc/\(p.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }
}

/// A precondition of a black-box test that does not hold (a missing binary or fixture):
/// the test fails with this message rather than being skipped.
struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
