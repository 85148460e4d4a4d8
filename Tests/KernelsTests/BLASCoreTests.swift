import XCTest
@testable import Kernels

/// OpenBLAS kernel sets: which `OPENBLAS_CORETYPE` diffusiond asks for when OpenBLAS does not
/// know the CPU (BLASCore).
final class BLASCoreTests: XCTestCase {
    func testAGenericKernelSetOnAModernCPUGetsTheBestOneItRuns() {
        let avx2: Set<String> = ["sse3", "avx", "avx2", "fma"]
        let avx512 = avx2.union(["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512_fp16"])
        // Debian 12's OpenBLAS 0.3.21 on an Emerald Rapids Xeon (model 207) picks Prescott.
        XCTAssertEqual(BLASCore.betterCoreType(current: "Prescott", cpuFlags: avx512), "SkylakeX")
        XCTAssertEqual(BLASCore.betterCoreType(current: "Nehalem", cpuFlags: avx2), "Haswell")
        XCTAssertEqual(BLASCore.betterCoreType(current: "Sandybridge", cpuFlags: avx2), "Haswell")
        // AVX-512 F alone (no BW/DQ/VL, as on Knights Landing) is not enough for SkylakeX.
        XCTAssertEqual(BLASCore.betterCoreType(current: "Prescott", cpuFlags: avx2.union(["avx512f"])), "Haswell")
    }

    func testAKnownKernelSetOrAnOldCPUIsLeftAlone() {
        let avx512: Set<String> = ["avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        for core in ["Haswell", "Zen", "SkylakeX", "COOPERLAKE", "SapphireRapids"] {
            XCTAssertNil(BLASCore.betterCoreType(current: core, cpuFlags: avx512), core)
        }
        XCTAssertNil(BLASCore.betterCoreType(current: "Prescott", cpuFlags: ["sse3", "avx"]))
    }

    func testTheLoadedLibraryNamesItsKernelSet() {
        XCTAssertFalse(BLASCore.name.isEmpty)
        XCTAssertNotEqual(BLASCore.name, "unknown")
        XCTAssertTrue(CPUFeatures.cpuFlags().contains("avx2"), "the engine is built for AVX2 + FMA")
    }
}
