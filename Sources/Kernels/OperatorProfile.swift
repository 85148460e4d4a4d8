import Foundation

/// Wall time per operator call (convolution, linear layer, attention), summed by operator and
/// shape, for `diffusion-bench unet|vae|text --profile`: where an evaluation's time goes,
/// measured in the engine itself rather than inferred from a sampling profiler (OpenBLAS's
/// frames carry no call graph). Off by default; disabled it costs one branch per operator.
///
/// Times are the caller's wall time around the whole (multi-threaded) operator, so they add
/// up to the evaluation's wall time less the operators it does not wrap (normalisations,
/// activations, element-wise passes).
public enum OperatorProfile {
    /// Set once, before any work starts (the bench's option parsing); read by every operator.
    nonisolated(unsafe) public static var isEnabled = false
    private static let lock = NSLock()
    nonisolated(unsafe) private static var totals: [String: (seconds: Double, calls: Int)] = [:]

    /// Runs `body`, adding its wall time to operator `name` when profiling is on.
    @inline(__always)
    public static func measure<T>(_ name: @autoclosure () -> String, _ body: () -> T) -> T {
        guard isEnabled else { return body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = body()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        let key = name()
        lock.lock()
        let old = totals[key] ?? (0, 0)
        totals[key] = (old.seconds + seconds, old.calls + 1)
        lock.unlock()
        return result
    }

    /// Forgets everything measured so far (after warm-up runs).
    public static func reset() {
        lock.lock()
        totals = [:]
        lock.unlock()
    }

    /// What has been measured since the last `reset`, most time first.
    public static func entries() -> [(name: String, seconds: Double, calls: Int)] {
        lock.lock()
        defer { lock.unlock() }
        return totals.map { (name: $0.key, seconds: $0.value.seconds, calls: $0.value.calls) }
            .sorted { $0.seconds > $1.seconds }
    }
}
