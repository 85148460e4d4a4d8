#if canImport(Glibc)
import Glibc
#endif

/// Signals the daemon reacts to, recorded by async-signal-safe handlers as flags that the
/// main loop and the worker poll (at least once a second, and after every step).
public enum Signals {
    nonisolated(unsafe) private static var stopFlag: sig_atomic_t = 0
    nonisolated(unsafe) private static var reloadFlag: sig_atomic_t = 0

    /// SIGTERM and SIGINT request a stop, SIGHUP a reload; SIGPIPE is ignored.
    public static func install() {
        var stop = sigaction()
        stop.__sigaction_handler.sa_handler = { _ in Signals.stopFlag = 1 }
        sigemptyset(&stop.sa_mask)
        sigaction(SIGTERM, &stop, nil)
        sigaction(SIGINT, &stop, nil)
        var reload = sigaction()
        reload.__sigaction_handler.sa_handler = { _ in Signals.reloadFlag = 1 }
        sigemptyset(&reload.sa_mask)
        sigaction(SIGHUP, &reload, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    public static var stopRequested: Bool { stopFlag != 0 }

    /// Asks the service to stop, as SIGTERM does.
    public static func requestStop() { stopFlag = 1 }

    /// True once per SIGHUP.
    public static func takeReloadRequest() -> Bool {
        guard reloadFlag != 0 else { return false }
        reloadFlag = 0
        return true
    }
}
