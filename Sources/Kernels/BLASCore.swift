import CBLAS
import Foundation

/// Which OpenBLAS kernel set runs the engine's GEMMs, and a fix for CPUs OpenBLAS does not
/// know. A DYNAMIC_ARCH OpenBLAS picks its kernels from the CPU model when it loads; a CPU
/// newer than the installed OpenBLAS (Debian 12's 0.3.21 on an Emerald Rapids Xeon, family 6
/// model 207) falls back to the generic SSE3 "Prescott" kernels, which ran the engine's linear
/// layers at 35 GFLOP/s on 2 cores where the same library's SkylakeX kernels give 215
/// (`diffusion-bench kernels`, 2026-12-05). OpenBLAS reads `OPENBLAS_CORETYPE` only at load
/// time, so the fix is to set it and execute the program again. The engine itself needs AVX2
/// and FMA (`-target-cpu haswell`), so on any CPU that runs it the Haswell kernels are safe;
/// SkylakeX's need AVX-512 F, CD, BW, DQ and VL.
public enum BLASCore {
    /// The kernel set OpenBLAS chose (`openblas_get_corename`), e.g. "Haswell", "SkylakeX".
    public static var name: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Kernel sets at least as fast as the Haswell ones on the CPUs that pick them.
    static let fastCores: Set<String> = ["haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"]

    /// The `OPENBLAS_CORETYPE` to ask for when OpenBLAS chose `current`, a kernel set slower
    /// than this CPU can run (`cpuFlags`: /proc/cpuinfo's `flags`); nil when `current` is
    /// fine or the CPU lacks AVX2 and FMA.
    public static func betterCoreType(current: String, cpuFlags: Set<String>) -> String? {
        if fastCores.contains(current.lowercased()) { return nil }
        let avx512: Set<String> = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        if avx512.isSubset(of: cpuFlags) { return "SkylakeX" }
        if cpuFlags.contains("avx2") && cpuFlags.contains("fma") { return "Haswell" }
        return nil
    }

    /// Call first in `main`, before any thread or file is opened: when OpenBLAS chose slower
    /// kernels than this CPU runs and `OPENBLAS_CORETYPE` is unset, sets it and executes the
    /// same program again with the same arguments, silently (so a command's output stays what
    /// it is; the variable shows in the process's environment). Returns when there is nothing
    /// to do, the variable is already set (by the user, or by the first run: so it never
    /// loops) or the re-execution fails.
    public static func reexecWithFasterKernelsIfNeeded() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil else { return }
        let current = name
        // Most starts end here, without reading /proc/cpuinfo.
        guard !fastCores.contains(current.lowercased()),
              let better = betterCoreType(current: current, cpuFlags: CPUFeatures.cpuFlags()) else { return }
        setenv("OPENBLAS_CORETYPE", better, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        let failure = "<4>could not run again with OPENBLAS_CORETYPE=\(better) (\(String(cString: strerror(errno)))); "
            + "going on with the \(current) kernels\n"
        FileHandle.standardError.write(Data(failure.utf8))
    }
}
