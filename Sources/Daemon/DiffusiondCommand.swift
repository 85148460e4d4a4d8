import ControlProtocol
import Foundation
import Jobs
import Models
import Pipeline

/// The `diffusiond` command line. `main.swift` only calls `DiffusiondCommand.main`.
public enum DiffusiondCommand {
    /// Version reported by `--version` and the control socket.
    public static let version = "0.1.0"

    static let usage = """
    usage: diffusiond [--config FILE] [--inbox DIR] [--outbox DIR] [--state DIR] [--socket PATH]
           diffusiond --config FILE --check-config
           diffusiond --oneshot JOB.yaml... --outbox DIR [--model DIR|FILE.safetensors [--tokenizer DIR]
                      [--prediction epsilon|v]] [--config FILE] [--threads N] [--shard K/N|auto [--shard-count N]]
           diffusiond --oneshot --status DIR JOB.yaml... [--shard-count N] [--model ...] [--config FILE]

    options:
      --config FILE          configuration (default /etc/diffusiond/diffusiond.yaml; man 5 diffusiond.yaml)
      --inbox DIR            folder watched for job files (overrides the config)
      --outbox DIR           folder that receives results (overrides the config)
      --state DIR            queue journal and claimed files (overrides the config)
      --socket PATH          control socket for diffusionctl (overrides the config)
      --threads N            cores for the engine (overrides the config's threads, also on reload)
      --check-config         validate the config and its models, print a summary, exit (78 on error)
      --oneshot              run the given job files into --outbox and exit; no inbox, queue or socket
      --model DIR|FILE       with --oneshot: a diffusers folder or a single-file .safetensors checkpoint
      --tokenizer DIR        with --model FILE: CLIP vocabulary folder (else the config's clip_tokenizer)
      --prediction epsilon|v with --model FILE: what an SD 2.x file predicts (default v)
      --shard K/N            with --oneshot: make only task K's share of the images (K from 0 to N-1);
                             rerunnable, many tasks into one outbox (man 8 diffusiond, SHARDING)
      --shard auto           K and N from SLURM_ARRAY_TASK_ID/_COUNT/_MIN, or JOB_COMPLETION_INDEX
      --shard-count N        with --shard auto: the number of tasks (array IDs are shard numbers)
      --status DIR           with --oneshot: list what the jobs have in DIR, per job and task; change nothing
      --debug                log debug messages too (also DIFFUSIOND_DEBUG=1)
      --version              print the version and exit
      -h, --help             this text
    """

    /// One line for a command-line mistake (the log prefixes it), pointing at --help.
    static func usageError(_ message: String) -> Int32 {
        Log.error("\(message) (diffusiond --help lists the options)")
        return SysExits.usage
    }

    /// Parses `arguments` (without the program name), runs, and returns the exit status.
    public static func main(_ arguments: [String], factory: @escaping GeneratorFactory = pipelineFactory) -> Int32 {
        // The worker process the daemon starts (`WorkerProcess`): not for people, not in --help.
        if arguments.first == "--worker" {
            guard arguments.count >= 2, let fd = Int32(arguments[1]), fd > 2 else {
                return usageError("--worker is started by diffusiond itself, with a socket descriptor")
            }
            if arguments.dropFirst(2).contains("--debug") || ProcessInfo.processInfo.environment["DIFFUSIOND_DEBUG"] != nil {
                Log.maximum = .debug
            }
            return WorkerMain.run(fd: fd, factory: factory)
        }
        // First of all, so a SIGTERM during start-up is a clean stop, not death by signal.
        Signals.install()
        var configPath: String?
        var overrides = Service.CommandLineOverrides()
        var checkOnly = false
        var oneshot = false
        var jobFiles: [String] = []
        var model: String?
        var tokenizer: URL?
        var prediction: CheckpointPrediction?
        var shardArgument: String?
        var shardCount: Int?
        var statusOutbox: URL?
        var i = 0
        func value(_ flag: String) -> String? {
            i += 1
            guard i < arguments.count else { _ = usageError("\(flag) needs a value"); return nil }
            return arguments[i]
        }
        func dir(_ s: String) -> URL { URL(fileURLWithPath: s).standardizedFileURL }
        while i < arguments.count {
            let arg = arguments[i]
            switch arg {
            case "--config": guard let v = value(arg) else { return SysExits.usage }; configPath = v
            case "--inbox": guard let v = value(arg) else { return SysExits.usage }; overrides.inbox = dir(v)
            case "--outbox": guard let v = value(arg) else { return SysExits.usage }; overrides.outbox = dir(v)
            case "--state": guard let v = value(arg) else { return SysExits.usage }; overrides.state = dir(v)
            case "--socket": guard let v = value(arg) else { return SysExits.usage }; overrides.socket = dir(v)
            case "--model": guard let v = value(arg) else { return SysExits.usage }; model = v
            case "--tokenizer": guard let v = value(arg) else { return SysExits.usage }; tokenizer = dir(v)
            case "--prediction":
                guard let v = value(arg), let p = CheckpointPrediction(configValue: v) else {
                    return usageError("--prediction needs epsilon or v")
                }
                prediction = p
            case "--threads":
                guard let v = value(arg), let n = Int(v), n > 0 else { return usageError("--threads needs a positive number") }
                overrides.threads = n
            case "--shard": guard let v = value(arg) else { return SysExits.usage }; shardArgument = v
            case "--shard-count":
                guard let v = value(arg), let n = Int(v), n > 0, n <= Shard.maxCount else {
                    return usageError("--shard-count needs a number of tasks from 1 to \(Shard.maxCount)")
                }
                shardCount = n
            case "--status": guard let v = value(arg) else { return SysExits.usage }; statusOutbox = dir(v)
            case "--check-config": checkOnly = true
            case "--oneshot": oneshot = true
            case "--debug": Log.maximum = .debug
            case "--version":
                print("diffusiond \(version)")
                return SysExits.ok
            case "-h", "--help":
                print(usage)
                return SysExits.ok
            default:
                if arg.hasPrefix("-") || !oneshot {
                    return usageError("unknown argument \(arg)")
                }
                jobFiles.append(arg)
            }
            i += 1
        }
        if ProcessInfo.processInfo.environment["DIFFUSIOND_DEBUG"] != nil { Log.maximum = .debug }

        let environment = ProcessInfo.processInfo.environment
        // The daemon's config when none is given; --oneshot reads it too when it exists, so a job
        // gives the same picture both ways.
        let defaultConfigPath = environment["DIFFUSIOND_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? "/etc/diffusiond/diffusiond.yaml"
        var config: ServiceConfig?
        if configPath == nil, oneshot, FileManager.default.fileExists(atPath: defaultConfigPath) {
            configPath = defaultConfigPath
        }
        if let configPath {
            do {
                config = try ServiceConfig.load(path: configPath)
            } catch {
                Log.error("\(error)")
                return SysExits.config
            }
        }
        if !oneshot, shardArgument != nil || shardCount != nil || statusOutbox != nil {
            return usageError("--shard, --shard-count and --status go with --oneshot")
        }
        if oneshot {
            if statusOutbox != nil, shardArgument != nil {
                return usageError("--status lists every task: give it --shard-count N, not --shard")
            }
            if shardCount != nil, statusOutbox == nil, shardArgument != "auto" {
                return usageError("--shard-count goes with --shard auto or --status")
            }
            guard !jobFiles.isEmpty, let outbox = statusOutbox ?? overrides.outbox else {
                return usageError("--oneshot needs job files and --outbox DIR (or --status DIR)")
            }
            var shard = Shard.whole
            if let shardArgument {
                do {
                    shard = shardArgument == "auto"
                        ? try ShardEnvironment.resolve(environment, shardCount: shardCount)
                        : try Shard(parsing: shardArgument)
                } catch {
                    return usageError("\(error)")
                }
            }
            var reference: ModelReference?
            var label: String?
            if let model {
                if let configured = config?.models[model], !FileManager.default.fileExists(atPath: model) {
                    label = model
                    // A configured name, with its tokenizer and prediction unless given here.
                    reference = configured
                    if let prediction { reference?.prediction = prediction }
                    if let tokenizer { reference?.tokenizer = tokenizer }
                } else {
                    // `--model FILE.safetensors` takes its vocabulary from --tokenizer, else the config's clip_tokenizer.
                    reference = ModelReference(path: dir(model), prediction: prediction, tokenizer: tokenizer ?? config?.clipTokenizer)
                }
            } else if config?.defaultModel == nil {
                return usageError(config == nil
                    ? "no model: give --model DIR|FILE.safetensors, or --config FILE with models (there is no \(defaultConfigPath))"
                    : "no model: give --model DIR|FILE.safetensors|NAME, or a default model in \(configPath ?? defaultConfigPath)")
            }
            let intake = OneshotIntake(files: jobFiles, model: reference, modelLabel: label, config: config)
            if statusOutbox != nil {
                return OneshotStatus(intake: intake, outbox: outbox, shardCount: shardCount).run()
            }
            return Oneshot(intake: intake, outbox: outbox, model: reference, config: config, threads: overrides.threads,
                           factory: factory, shard: shard, schedulerTask: ShardEnvironment.taskName(environment)).run()
        }
        let path = configPath ?? defaultConfigPath
        if config == nil {
            do {
                config = try ServiceConfig.load(path: path)
            } catch {
                Log.error("\(error) (give --config FILE)")
                return SysExits.config
            }
        }
        guard let loaded = config else { return SysExits.config }
        if checkOnly { return check(loaded, overrides: overrides, path: path) }
        return Service(config: loaded, configPath: path, overrides: overrides).run()
    }

    /// `--check-config`: the file parsed, then ``ConfigValidation`` (the same checks a
    /// SIGHUP reload makes). Prints a summary on stdout.
    static func check(_ config: ServiceConfig, overrides: Service.CommandLineOverrides, path: String) -> Int32 {
        var config = config
        overrides.apply(to: &config)
        let report = ConfigValidation(config, path: path)
        for error in report.errors { Log.error(error) }
        for warning in report.warnings { Log.warning(warning) }
        let ok = report.errors.isEmpty
        let sizes = report.sizes
        let d = config.defaults
        print("""
        config \(path): \(ok ? "OK" : "has errors")
          inbox   \(config.inbox.path)
          outbox  \(config.outbox.path)
          state   \(config.state.path)
          socket  \(config.socket.path)
          models  \(config.models.keys.sorted().joined(separator: ", ")) (default: \(config.defaultModel ?? "none"))
          loras   \(config.loraDirectory?.path ?? "none (jobs with LoRAs are rejected)")
          limits  \(config.limits.maxWidth)x\(config.limits.maxHeight), \(config.limits.maxSteps) steps, \(config.limits.maxCount) images, \(config.limits.maxFileSize) bytes
          defaults \(sizes.isEmpty ? "no size" : sizes.joined(separator: ", ")), \(d.steps) steps, \(Self.samplerSummary(d)), guidance \(d.guidance)
        """)
        // A model entry's own defaults: what its jobs get instead (its size is in the line above).
        for (name, own) in config.modelDefaults.sorted(by: { $0.key < $1.key }) {
            print("  defaults for \(name): \(own.steps) steps, \(Self.samplerSummary(own)), guidance \(own.guidance)")
        }
        return ok ? SysExits.ok : SysExits.config
    }

    /// `euler_a eta 1.75 restart [5, 2, 0.5, 2]`: a defaults section's sampler with its options.
    static func samplerSummary(_ defaults: JobDefaults) -> String {
        var text = defaults.sampler.rawValue
        if let eta = defaults.eta { text += " eta \(eta)" }
        if let restart = defaults.restart { text += " restart \(restart.description)" }
        return text
    }
}
