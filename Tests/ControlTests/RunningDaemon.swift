#if canImport(Glibc)
import Glibc
#endif
import XCTest
import Foundation
import ControlClient

/// The built `diffusiond` running in a temp folder of its own (config, spool, socket, log),
/// driven with the built `diffusionctl`. Waits poll with a generous deadline that only
/// guards against hangs; no test asserts on time.
final class RunningDaemon {
    let root: String
    var inbox: String { root + "/spool/inbox" }
    var outbox: String { root + "/spool/outbox" }
    var socket: String { root + "/run/control.sock" }
    var logPath: String { root + "/diffusiond.log" }
    private var process: Process?

    /// A model folder the engine can load, if the repository has one (built-in or fixture).
    static var model: String? {
        for path in ["models/shapes", "Tests/Fixtures/tiny-sd1", "Tests/Fixtures/models/tiny-sd1"] {
            let folder = repository.appendingPathComponent(path).path
            if FileManager.default.fileExists(atPath: folder + "/model_index.json") { return folder }
        }
        return nil
    }

    /// Writes the config; `model` nil uses a folder that does not exist (jobs then fail at load).
    /// `extraConfig` is appended to the file (e.g. `lora_dir: …`).
    init(model: String? = nil, steps: Int = 2, extraConfig: String = "") throws {
        root = NSTemporaryDirectory() + "ctl-daemon-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
        try """
        inbox: spool/inbox
        outbox: spool/outbox
        state: spool/state
        socket: run/control.sock
        threads: 1
        models:
          default: main
          main: \(model ?? "/nonexistent/model")
        defaults:
          width: 32
          height: 32
          steps: \(steps)
        \(extraConfig)
        """.write(toFile: root + "/diffusiond.yaml", atomically: true, encoding: .utf8)
    }

    deinit {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Starts the daemon and waits until its socket answers `status`.
    /// With `activatedOn`, systemd-socket-activate(1) listens there and starts the daemon
    /// on the first connection, passing the socket as fd 3 (LISTEN_FDS), as diffusiond.socket does.
    func start(activatedOn listenPath: String? = nil) throws {
        let p = Process()
        let daemon = try ExecutableRunner.executable("diffusiond")
        if let listenPath {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
            p.arguments = ["--listen=\(listenPath)", daemon, "--config", root + "/diffusiond.yaml"]
        } else {
            p.executableURL = URL(fileURLWithPath: daemon)
            p.arguments = ["--config", root + "/diffusiond.yaml"]
        }
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = nil
        env["LISTEN_FDS"] = nil
        env["LISTEN_PID"] = nil
        p.environment = env
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        process = p
        // In-process client: no child process is spawned while the daemon starts.
        let path = listenPath ?? socket
        try waitUntil("the control socket answers") { (try? ControlSession(socketPath: path).status()) != nil }
    }

    /// SIGTERM and wait; returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        guard let p = process else { return -1 }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        process = nil
        return p.terminationStatus
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// `diffusionctl --socket SOCKET ARGS…` as root (or as `uid`): (status, stdout, stderr).
    func ctl(_ arguments: [String], asUID uid: UInt32? = nil) throws -> (Int32, String, String) {
        try ExecutableRunner.run(try ExecutableRunner.executable("diffusionctl"), ["--socket", socket] + arguments, asUID: uid)
    }

    /// `diffusionctl --json …` decoded as JSON.
    func json(_ arguments: String...) throws -> Any {
        let (status, out, err) = try ctl(["--json"] + arguments)
        guard status == 0 else { throw ControlTestError("diffusionctl \(arguments) exited \(status): \(err)") }
        return try JSONSerialization.jsonObject(with: Data(out.utf8))
    }

    /// Repository folder (for fixtures).
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The jobs of `queue [--all]` as dictionaries.
    func queue(all: Bool = false) throws -> [[String: Any]] {
        let value = all ? try json("queue", "--all") : try json("queue")
        guard let jobs = value as? [[String: Any]] else { throw ControlTestError("queue --json is not an array of objects") }
        return jobs
    }

    func waitUntil(_ what: String, limit: Double = 120, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(limit)
        while Date() < deadline {
            if try condition() { return }
            usleep(50_000)
        }
        throw ControlTestError("timed out waiting for: \(what)\n--- daemon log ---\n\(log)")
    }
}

struct ControlTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
