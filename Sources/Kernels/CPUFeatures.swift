import Foundation
#if arch(x86_64)
import KernelsAVX512
#endif

/// What the CPU can run beyond the AVX2 + FMA the engine is built for, read once from
/// /proc/cpuinfo, and which optional kernels the process uses.
public enum CPUFeatures {
    /// The AVX-512 subsets `-target-cpu skylake-avx512` code may use: the KernelsAVX512
    /// module runs only where the CPU (and the kernel, which hides these flags when it does
    /// not save the 512-bit registers) has all five.
    static let avx512Flags: Set<String> = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]

    /// The `flags` of the first processor in /proc/cpuinfo (empty if unreadable).
    static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Whether the CPU has every flag in `avx512Flags`.
    public static let hasAVX512: Bool = {
        #if arch(x86_64)
        return avx512Flags.isSubset(of: cpuFlags())
        #else
        return false
        #endif
    }()

    /// Whether the AVX-512 kernels run: `hasAVX512`, unless `DIFFUSION_AVX512=0` in the
    /// environment (to compare the two paths in one build, or to rule the AVX-512 ones out).
    /// Tests switch it off and on to check both paths against each other.
    nonisolated(unsafe) public static var useAVX512Kernels: Bool =
        hasAVX512 && ProcessInfo.processInfo.environment["DIFFUSION_AVX512"] != "0"

    /// The AMX flags the tile kernels (`AMXPackedLinear`) need besides AVX-512.
    static let amxFlags: Set<String> = ["amx_tile", "amx_bf16", "avx512_bf16"]

    /// Whether the CPU has AMX tiles with bf16 products and Linux grants this process their
    /// state (asked once, at first use).
    public static let hasAMX: Bool = {
        #if arch(x86_64)
        return hasAVX512 && amxFlags.isSubset(of: cpuFlags()) && AMXPackedLinear.permitted
        #else
        return false
        #endif
    }()

    /// Whether packed linear layers run on the AMX tiles (at fp32 accuracy, six bf16 products
    /// per fp32 one): `hasAMX` with the AVX-512 kernels on, unless `DIFFUSION_AMX=0` (checked
    /// first, so that Linux is not even asked for the tile state, which once granted enlarges
    /// every signal frame of the process). Tests switch it to compare the two paths.
    nonisolated(unsafe) public static var useAMX: Bool =
        ProcessInfo.processInfo.environment["DIFFUSION_AMX"] != "0" && useAVX512Kernels && hasAMX
}
