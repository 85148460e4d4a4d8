import Foundation
import ControlProtocol

/// A usage error: what is wrong with the command line (exit 64).
public struct UsageError: Error, Equatable, CustomStringConvertible {
    public var message: String
    /// Print the whole usage after the message (no verb at all); else one line is enough.
    public var showsUsage: Bool
    public init(_ message: String, showsUsage: Bool = false) {
        self.message = message
        self.showsUsage = showsUsage
    }
    public var description: String { message }
}

/// The parsed `diffusionctl` command line.
public struct CtlArguments: Equatable {
    /// What to do.
    public enum Command: Equatable {
        case help
        case version
        case status
        case queue(all: Bool)
        case show(ids: [String])
        /// `wait`: seconds to wait for the daemon to take the files in; nil with `--no-wait`.
        case submit(files: [String], wait: Double?)
        case change(Verb, ids: [String])
        case priority(id: String, level: Int)
        case pause
        case resume
        case history(limit: Int?)
        case watch(once: Bool)
        case models
    }

    public var socketPath: String
    public var json: Bool
    public var command: Command

    public static let usage = """
    usage: diffusionctl [--socket PATH] [--json] VERB [ARGS]

    verbs:
      status                 daemon state, running job, counts, inbox path
      queue [--all]          queued, held and running jobs (--all: finished too)
      show ID|NAME...        one job in full: parameters, images, timings
      submit [--no-wait] [--timeout S] FILE...
                             copy job files into the inbox; print each job's id or
                             why the file was rejected (waits up to S = 30 seconds)
      cancel ID...           cancel queued, held or running jobs
      hold ID...             keep queued jobs from starting
      release ID...          let held jobs start again
      priority ID LEVEL      LEVEL is \(JobPriority.usageText)
      pause | resume         stop / restart starting new jobs (root, daemon user)
      retry ID...            queue failed or cancelled jobs again
      history [--limit N]    finished jobs and rejected files, newest first
      watch [--once]         live progress, it/s and ETAs (Ctrl-C ends)
      models                 configured models

    options:
      --socket PATH          control socket (default $DIFFUSIOND_SOCKET or \(ControlWire.defaultSocketPath))
      --json                 machine-readable output
      -h, --help             this text;  --version  client and protocol version
    """

    /// Parses `arguments` (without the program name).
    public static func parse(_ arguments: [String], environment: [String: String]) throws -> CtlArguments {
        var socketPath = environment[ControlWire.socketEnvironmentVariable].flatMap { $0.isEmpty ? nil : $0 }
            ?? ControlWire.defaultSocketPath
        var json = false
        var rest: [String] = []
        var index = 0
        var verbSeen = false
        // Global options may come before or after the verb; `--` ends option parsing.
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                rest.append(contentsOf: arguments[(index + 1)...])
                break
            } else if argument == "--socket" || argument == "-s" {
                guard index + 1 < arguments.count else { throw UsageError("\(argument) needs a path") }
                socketPath = arguments[index + 1]
                index += 1
            } else if argument.hasPrefix("--socket=") {
                socketPath = String(argument.dropFirst("--socket=".count))
            } else if argument == "--json" {
                json = true
            } else if argument == "-h" || argument == "--help" {
                if !verbSeen { return CtlArguments(socketPath: socketPath, json: json, command: .help) }
                rest.append(argument)
            } else if argument == "--version" && !verbSeen {
                return CtlArguments(socketPath: socketPath, json: json, command: .version)
            } else {
                verbSeen = true
                rest.append(argument)
            }
            index += 1
        }
        guard !socketPath.isEmpty else { throw UsageError("--socket needs a non-empty path") }
        guard let verbText = rest.first else { throw UsageError("no verb given", showsUsage: true) }
        let args = Array(rest.dropFirst())
        if args.contains("-h") || args.contains("--help") {
            return CtlArguments(socketPath: socketPath, json: json, command: .help)
        }
        return CtlArguments(socketPath: socketPath, json: json, command: try command(verbText, args))
    }

    private static func command(_ verbText: String, _ args: [String]) throws -> Command {
        func noArguments(_ command: Command) throws -> Command {
            guard args.isEmpty else { throw UsageError("\(verbText) takes no arguments, got '\(args[0])'") }
            return command
        }
        func ids() throws -> [String] {
            if let option = args.first(where: { $0.hasPrefix("-") && $0.count > 1 }) {
                throw UsageError("\(verbText): unknown option '\(option)'")
            }
            guard !args.isEmpty else { throw UsageError("\(verbText) needs at least one job id") }
            return args
        }
        switch verbText {
        case "status": return try noArguments(.status)
        case "models": return try noArguments(.models)
        case "pause": return try noArguments(.pause)
        case "resume": return try noArguments(.resume)
        case "queue", "list":
            for argument in args where argument != "--all" && argument != "-a" {
                throw UsageError("queue: unknown argument '\(argument)' (only --all)")
            }
            return .queue(all: !args.isEmpty)
        case "show": return .show(ids: try ids())
        case "cancel": return .change(.cancel, ids: try ids())
        case "hold": return .change(.hold, ids: try ids())
        case "release": return .change(.release, ids: try ids())
        case "retry": return .change(.retry, ids: try ids())
        case "submit":
            return try submit(args)
        case "priority":
            guard args.count == 2 else { throw UsageError("priority needs a job id and a level, e.g. `priority j0001 high`") }
            return .priority(id: args[0], level: try parseLevel(args[1]))
        case "history":
            if args.isEmpty { return .history(limit: nil) }
            var limitText: String?
            if args.count == 2, args[0] == "--limit" || args[0] == "-n" { limitText = args[1] }
            if args.count == 1, args[0].hasPrefix("--limit=") { limitText = String(args[0].dropFirst("--limit=".count)) }
            guard let text = limitText, let limit = Int(text), limit >= 0 else {
                throw UsageError("history takes only --limit N (N ≥ 0)")
            }
            return .history(limit: limit)
        case "watch":
            for argument in args where argument != "--once" {
                throw UsageError("watch: unknown argument '\(argument)' (only --once)")
            }
            return .watch(once: !args.isEmpty)
        default:
            throw UsageError("unknown verb '\(verbText)'")
        }
    }

    /// Seconds `submit` waits for the intake unless told otherwise.
    public static let defaultSubmitWait = 30.0

    /// `submit [--no-wait] [--timeout SECONDS] FILE…`.
    private static func submit(_ args: [String]) throws -> Command {
        var wait: Double? = defaultSubmitWait
        var files: [String] = []
        var index = 0
        while index < args.count {
            let argument = args[index]
            if argument == "--no-wait" {
                wait = nil
            } else if argument == "--timeout" || argument.hasPrefix("--timeout=") {
                var text: String?
                if argument == "--timeout" {
                    index += 1
                    text = index < args.count ? args[index] : nil
                } else {
                    text = String(argument.dropFirst("--timeout=".count))
                }
                guard let text, let seconds = Double(text), seconds.isFinite, seconds >= 0 else {
                    throw UsageError("submit: --timeout needs a number of seconds (0 or more)")
                }
                wait = seconds
            } else if argument.hasPrefix("-") && argument.count > 1 {
                throw UsageError("submit: unknown option '\(argument)' (only --no-wait, --timeout SECONDS)")
            } else {
                files.append(argument)
            }
            index += 1
        }
        guard !files.isEmpty else { throw UsageError("submit needs at least one job file") }
        // --no-wait wins over --timeout, wherever they stand.
        return .submit(files: files, wait: args.contains("--no-wait") ? nil : wait)
    }

    /// `0…100` or a priority name in any case (``JobPriority/init(parsing:)``).
    public static func parseLevel(_ text: String) throws -> Int {
        guard let level = JobPriority(parsing: text) else { throw UsageError(JobPriority.invalidLevelMessage(text)) }
        return level.rawValue
    }
}
