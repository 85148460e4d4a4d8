// swift-tools-version:6.0
// diffusiond — text-to-image diffusion service for the CPU.
// Layout, data flow and contracts: docs/ARCHITECTURE.md. Targets, in dependency order:
// C shims → Kernels → Models / Sampling → Pipeline → Jobs → Daemon → executables.
// Each target declares exactly the modules its sources import (`python3 tools/check_imports.py`).
import PackageDescription

/// Hot-loop targets are built with -O even in debug, and for Haswell (AVX2 + FMA + F16C)
/// on x86_64: without these, SIMD `addingProduct` lowers to libm `fma` calls (~20x slower).
/// `x86-64-v3` is rejected by this swiftc, so the CPU is named.
#if arch(x86_64)
let hotFlags: [SwiftSetting] = [.unsafeFlags(["-O", "-target-cpu", "haswell"])]
/// KernelsAVX512 holds the AVX-512 builds of a few kernels, called only on CPUs that have it.
let avx512Flags: [SwiftSetting] = [.unsafeFlags(["-O", "-target-cpu", "skylake-avx512"])]
#else
let hotFlags: [SwiftSetting] = [.unsafeFlags(["-O"])]
let avx512Flags: [SwiftSetting] = [.unsafeFlags(["-O"])]
#endif

let package = Package(
    name: "diffusiond",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "diffusiond", targets: ["diffusiond"]),
        .executable(name: "diffusionctl", targets: ["diffusionctl"]),
        .executable(name: "diffusion-bench", targets: ["diffusion-bench"]),
        .executable(name: "diffusion-fuzz", targets: ["diffusion-fuzz"]),
    ],
    targets: [
        // System-library shims over Debian -dev packages.
        .systemLibrary(name: "CYAML", path: "Sources/CYAML", pkgConfig: "yaml-0.1",
                       providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng16",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CInotifyTools", path: "Sources/CInotifyTools",
                       providers: [.apt(["libinotifytools0-dev"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),

        // Header-only: software prefetch for the weight-streaming kernels.
        .systemLibrary(name: "CPrefetch", path: "Sources/CPrefetch"),
        .systemLibrary(name: "CAVX512", path: "Sources/CAVX512"),

        // Engine.
        .target(name: "KernelsAVX512", dependencies: ["CPrefetch", "CAVX512"], swiftSettings: avx512Flags),
        .target(name: "Kernels", dependencies: ["CBLAS", "CPrefetch", "KernelsAVX512"], swiftSettings: hotFlags),
        .target(name: "Models", dependencies: ["Kernels"], swiftSettings: hotFlags),
        .target(name: "Sampling", dependencies: ["Kernels"], swiftSettings: hotFlags),
        .target(name: "Pipeline", dependencies: ["Kernels", "Models", "Sampling"], swiftSettings: hotFlags),
        .target(name: "Evaluation", dependencies: ["Pipeline"], swiftSettings: hotFlags),

        // Service.
        .target(name: "Jobs", dependencies: ["CYAML", "CPNG", "CJPEG", "Models", "Pipeline", "Sampling", "ControlProtocol"]),
        .target(name: "ControlProtocol"),
        .target(name: "ControlClient", dependencies: ["ControlProtocol"]),
        .target(name: "Daemon", dependencies: ["Models", "Jobs", "Pipeline", "ControlProtocol", "CInotifyTools"]),

        // Fuzzing: the parsers of untrusted bytes as libFuzzer targets (`make fuzz`).
        .target(name: "FuzzTargets", dependencies: ["Jobs", "Models", "Pipeline", "Sampling", "ControlProtocol"]),

        // Executables: thin main.swift files.
        .executableTarget(name: "diffusiond", dependencies: ["Daemon", "Kernels"]),
        .executableTarget(name: "diffusionctl", dependencies: ["ControlClient"]),
        .executableTarget(name: "diffusion-bench",
                          dependencies: ["Kernels", "Models", "Sampling", "Pipeline", "Evaluation", "Jobs"],
                          swiftSettings: hotFlags),
        .executableTarget(name: "diffusion-fuzz", dependencies: ["FuzzTargets"]),

        // Assertions more than one test target needs (XCTest only; no product links it).
        .target(name: "TestSupport", path: "Tests/TestSupport"),

        // Tests: levels 1–4 of docs/ARCHITECTURE.md. Fixtures live in Tests/Fixtures (made by tools/fixtures).
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "KernelsAVX512", "TestSupport"], swiftSettings: hotFlags),
        .testTarget(name: "ModelsTests", dependencies: ["Kernels", "Models", "TestSupport"], swiftSettings: hotFlags),
        .testTarget(name: "SamplingTests", dependencies: ["Sampling"], swiftSettings: hotFlags),
        .testTarget(name: "PipelineTests", dependencies: ["Kernels", "Models", "Sampling", "Pipeline"], swiftSettings: hotFlags),
        .testTarget(name: "EvaluationTests", dependencies: ["Sampling", "Pipeline", "Evaluation"], swiftSettings: hotFlags),
        .testTarget(name: "JobsTests", dependencies: ["CPNG", "Sampling", "Pipeline", "Jobs", "ControlProtocol"]),
        .testTarget(name: "DaemonTests", dependencies: ["Pipeline", "Jobs", "ControlProtocol", "Daemon"]),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets"]),
        .testTarget(name: "ControlTests", dependencies: ["ControlProtocol", "ControlClient", "Daemon"]),
    ],
    swiftLanguageModes: [.v5]
)
