import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// sd_notify(3) without libsystemd: datagrams to the `AF_UNIX` socket named by `NOTIFY_SOCKET`
/// (a path, or `@name` for the abstract namespace). Does nothing when the variable is unset.
/// `watchdog()` is rate-limited to a quarter of `WATCHDOG_USEC`, so that with one
/// denoising step between two calls the gap between pings still stays under half of it (the
/// interval sd_watchdog_enabled(3) asks for). Thread-safe.
public final class SystemdNotifier: @unchecked Sendable {
    private let fd: Int32
    private var address = sockaddr_un()
    private var addressLength: socklen_t = 0
    private let watchdogInterval: Double?
    private var lastWatchdog = 0.0
    private let lock = NSLock()

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let usec = environment["WATCHDOG_USEC"].flatMap(Double.init),
           environment["WATCHDOG_PID"].flatMap(Int32.init).map({ $0 == getpid() }) ?? true {
            watchdogInterval = usec / 4e6
        } else {
            watchdogInterval = nil
        }
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty, path.utf8.count < 108 else {
            fd = -1
            return
        }
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        addressLength = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Sends `state` (e.g. `"READY=1\nSTATUS=idle"`).
    public func notify(_ state: String) {
        guard fd >= 0 else { return }
        let bytes = Array(state.utf8)
        lock.lock()
        defer { lock.unlock() }
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, addressLength) }
            }
        }
    }

    public func ready(status: String) { notify("READY=1\nSTATUS=\(status)") }
    public func status(_ text: String) { notify("STATUS=\(text)") }
    public func stopping() { notify("STOPPING=1") }
    /// `RELOADING=1` with the `MONOTONIC_USEC=` that `Type=notify-reload` requires.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        notify("RELOADING=1\nMONOTONIC_USEC=\(Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000)")
    }

    /// Keep-alive; call from the loop whose progress proves the service healthy.
    public func watchdog() {
        guard let interval = watchdogInterval else { return }
        let now = Date().timeIntervalSince1970
        lock.lock()
        let due = now - lastWatchdog >= interval
        if due { lastWatchdog = now }
        lock.unlock()
        if due { notify("WATCHDOG=1") }
    }
}
