#if canImport(Glibc)
import Glibc
#endif

/// How a worker process ended, from waitpid(2), and whether that ending strikes the job it
/// was running.
enum WorkerExit: Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// Decodes a waitpid status.
    init(status: Int32) {
        let signal = status & 0x7f
        if signal == 0 {
            self = .exited((status >> 8) & 0xff)
        } else {
            self = .signaled(signal)
        }
    }

    /// Signals that mean the worker itself failed: a fault in the engine (SIGSEGV, SIGBUS,
    /// SIGILL, SIGFPE), an abort or a Swift runtime trap (SIGABRT, SIGTRAP, SIGILL), a
    /// forbidden system call (SIGSYS). SIGKILL counts too unless the daemon sent it: then it
    /// was the OOM killer (the worker is its first choice, see `WorkerMain.raiseOOMScore`).
    static let faultSignals: Set<Int32> = [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS]

    /// The strike reason when this ending counts against the job the worker was running, nil
    /// when it does not (a clean exit, a SIGKILL the daemon sent, a SIGTERM or SIGINT from an
    /// operator: the job is queued again without a strike).
    func strikeReason(killedByDaemon: Bool) -> String? {
        switch self {
        case .exited(0): return nil
        case .exited(let code): return "exit status \(code)"
        case .signaled(let signal):
            if WorkerExit.faultSignals.contains(signal) { return WorkerExit.name(signal) }
            if signal == SIGKILL && !killedByDaemon { return "SIGKILL (out of memory, or killed from outside)" }
            return nil
        }
    }

    var description: String {
        switch self {
        case .exited(let code): return "exit status \(code)"
        case .signaled(let signal): return WorkerExit.name(signal)
        }
    }

    /// The signal's name (`SIGSEGV`), or `signal N`.
    static func name(_ signal: Int32) -> String {
        names.first { $0.value == signal }?.name ?? "signal \(signal)"
    }

    /// Signal numbers by name, for ``name(_:)`` and the worker's test fault switch.
    static let names: [(name: String, value: Int32)] = [
        ("SIGSEGV", SIGSEGV), ("SIGBUS", SIGBUS), ("SIGILL", SIGILL), ("SIGFPE", SIGFPE), ("SIGABRT", SIGABRT),
        ("SIGTRAP", SIGTRAP), ("SIGSYS", SIGSYS), ("SIGKILL", SIGKILL), ("SIGTERM", SIGTERM), ("SIGINT", SIGINT),
        ("SIGHUP", SIGHUP), ("SIGQUIT", SIGQUIT), ("SIGPIPE", SIGPIPE), ("SIGUSR1", SIGUSR1), ("SIGUSR2", SIGUSR2),
    ]
}
