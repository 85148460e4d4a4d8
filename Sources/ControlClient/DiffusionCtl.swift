import Foundation
import ControlProtocol

/// The `diffusionctl` command: parses arguments, talks to the daemon, prints, and returns
/// a sysexits(3) status. The executable's main.swift only calls ``run(_:environment:output:)``.
public enum DiffusionCtl {
    public static let clientVersion = "0.1.0"

    /// Runs one command line (without the program name); returns the exit status.
    public static func run(_ arguments: [String], environment: [String: String], output: CtlOutput) -> Int32 {
        let parsed: CtlArguments
        do {
            parsed = try CtlArguments.parse(arguments, environment: environment)
        } catch {
            // No verb at all: the whole usage helps. Otherwise one line that says what is wrong.
            if (error as? UsageError)?.showsUsage ?? true {
                output.err("diffusionctl: \(error)\n\(CtlArguments.usage)\n")
            } else {
                output.err("diffusionctl: \(error) (diffusionctl --help lists the verbs)\n")
            }
            return SysExits.usage
        }
        do {
            return try execute(parsed, output: output)
        } catch let error as ClientError {
            output.err("diffusionctl: \(error)\n")
            return error.exitCode
        } catch let error as SubmitError {
            output.err("diffusionctl: \(error)\n")
            return error.exitCode
        } catch {
            output.err("diffusionctl: \(error)\n")
            return SysExits.ioError
        }
    }

    private static func execute(_ arguments: CtlArguments, output: CtlOutput) throws -> Int32 {
        let socket = arguments.socketPath
        let json = arguments.json
        switch arguments.command {
        case .help:
            output.out(CtlArguments.usage + "\n")
            return SysExits.ok
        case .version:
            output.out("diffusionctl \(clientVersion), control protocol \(ControlWire.version)\n")
            return SysExits.ok
        case .watch(let once):
            try WatchView(socketPath: socket, json: json, output: output).run(once: once)
            return SysExits.ok
        default:
            break
        }
        let client = try ControlSession(socketPath: socket)
        defer { client.close() }
        switch arguments.command {
        case .help, .version, .watch:
            return SysExits.ok
        case .status:
            let status = try client.status()
            if json { output.printJSON(status) } else { output.out(CtlFormatting.status(status, socket: socket)) }
        case .queue(let all):
            let jobs = try client.queue(all: all)
            if json { output.printJSON(jobs) } else { output.out(CtlFormatting.jobTable(jobs)) }
        case .history(let limit):
            let entries = try client.historyEntries(limit: limit)
            if json { output.printJSON(entries) } else { output.out(CtlFormatting.history(entries)) }
        case .models:
            let models = try client.models()
            if json { output.printJSON(models) } else { output.out(CtlFormatting.models(models)) }
        case .show(let ids):
            return try forEachID(ids, json: json, output: output) { try client.show($0) } render: { CtlFormatting.jobDetail($0) }
        case .change(let verb, let ids):
            return try forEachID(ids, json: json, output: output) { try client.change(verb, id: $0) } render: {
                "\($0.id) \($0.name): \($0.stateDescription)\n"
            }
        case .priority(let id, let level):
            return try forEachID([id], json: json, output: output) { try client.setPriority($0, to: level) } render: {
                "\($0.id) \($0.name): priority \($0.priority)\n"
            }
        case .pause, .resume:
            if case .pause = arguments.command { try client.pause() } else { try client.resume() }
            let paused = try client.status().paused
            if json { output.printJSON(["paused": paused]) } else {
                output.out(paused ? "paused: running job continues, no new job starts\n" : "resumed: jobs start again\n")
            }
        case .submit(let files, let wait):
            return try SubmitCommand(client: client, daemon: try client.status(), wait: wait, json: json, output: output)
                .run(files)
        }
        return SysExits.ok
    }

    /// Applies `action` to every id (continuing after failures); the exit status is that of
    /// the first failure, 0 if none.
    private static func forEachID(_ ids: [String], json: Bool, output: CtlOutput,
                                  _ action: (String) throws -> JobInfo, render: (JobInfo) -> String) throws -> Int32 {
        var records: [JobInfo] = []
        var status = SysExits.ok
        for id in ids {
            do {
                let record = try action(id)
                records.append(record)
                if !json { output.out(render(record)) }
            } catch ClientError.server(let failure) {
                output.err("diffusionctl: \(id): \(failure.message)\n")
                if status == SysExits.ok { status = ClientError.server(failure).exitCode }
            }
        }
        if json {
            if ids.count == 1, let only = records.first { output.printJSON(only) } else { output.printJSON(records) }
        }
        return status
    }
}
