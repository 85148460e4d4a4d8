import Foundation
import Kernels

/// Monotonic wall-clock seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// CPU seconds (user + system) this process has used so far, all threads together.
/// On a machine shared with other work, flops / CPU-seconds is a steadier measure of a
/// kernel's per-core throughput than wall time.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func secs(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
    return secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Peak resident set size of this process so far, in MiB (getrusage ru_maxrss is KiB on Linux).
func peakRSSMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// Writes a line to stdout.
func printLine(_ s: String) {
    FileHandle.standardOutput.write(Data((s + "\n").utf8))
}

/// Writes a syslog-prefixed line to stderr.
func log(_ priority: Int, _ s: String) {
    FileHandle.standardError.write(Data("<\(priority)>\(s)\n".utf8))
}

/// A flat JSON object with string and number values, keys in insertion order.
struct JSONLine {
    private var parts: [String] = []
    mutating func add(_ key: String, _ value: Double) {
        let v = value.isFinite ? String(format: "%.6g", value) : "null"
        parts.append("\"\(key)\":\(v)")
    }
    mutating func add(_ key: String, _ value: Int) { parts.append("\"\(key)\":\(value)") }
    /// An array of seconds, each to 0.1 ms.
    mutating func add(_ key: String, _ values: [Double]) {
        let items = values.map { $0.isFinite ? String(format: "%.4f", $0) : "null" }
        parts.append("\"\(key)\":[\(items.joined(separator: ","))]")
    }
    mutating func add(_ key: String, _ value: Bool) { parts.append("\"\(key)\":\(value)") }
    mutating func add(_ key: String, _ value: String) {
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        parts.append("\"\(key)\":\"\(escaped)\"")
    }
    var text: String { "{" + parts.joined(separator: ",") + "}" }
}

/// Command-line options of the form `--name value` and bare `--flag`.
struct Options {
    private var values: [String: String] = [:]
    private var flags: Set<String> = []

    init(_ args: [String], flags known: Set<String>) throws {
        var i = 0
        while i < args.count {
            let a = args[i]
            guard a.hasPrefix("--") else { throw BenchError.usage("unexpected argument '\(a)'") }
            let name = String(a.dropFirst(2))
            if known.contains(name) {
                flags.insert(name)
                i += 1
            } else {
                guard i + 1 < args.count else { throw BenchError.usage("option --\(name) needs a value") }
                values[name] = args[i + 1]
                i += 2
            }
        }
    }

    func has(_ flag: String) -> Bool { flags.contains(flag) }
    func string(_ name: String, default d: String) -> String { values[name] ?? d }
    /// The value given for `--name`, if any.
    func value(_ name: String) -> String? { values[name] }
    func int(_ name: String, default d: Int) throws -> Int {
        guard let s = values[name] else { return d }
        guard let v = Int(s), v > 0 else { throw BenchError.usage("--\(name) must be a positive integer, got '\(s)'") }
        return v
    }
    /// Names given that are not in `allowed` (flags or valued options).
    func unknown(allowed: Set<String>) -> [String] {
        (Array(values.keys) + Array(flags)).filter { !allowed.contains($0) }.sorted()
    }
}

enum BenchError: Error, CustomStringConvertible {
    case usage(String)
    var description: String {
        switch self { case .usage(let s): return s }
    }
}

/// Fills `t` with uniform values in [−scale, scale) from a fast counter-based hash
/// (SplitMix64), in parallel. Benchmarks only need plausible magnitudes, not quality.
func fillRandom(_ t: Tensor, seed: UInt64, scale: Float = 1, pool: ThreadPool) {
    let p = t.data
    pool.parallelFor(0..<t.count, grain: 1 << 16) { r, _ in
        for i in r {
            var z = seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            p[i] = (Float(z >> 40) * (2 / Float(1 << 24)) - 1) * scale
        }
    }
}
