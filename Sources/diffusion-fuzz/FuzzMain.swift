import Foundation
import FuzzTargets

// Built two ways (docs/ARCHITECTURE.md "Fuzzing"):
// - plain (`swift build`): a replayer, `diffusion-fuzz TARGET FILE|DIR…`, that runs saved
//   inputs through a target (the committed corpus, a crash file from a fuzzing run);
// - with `-D FUZZING` and the address sanitizer plus libFuzzer's coverage instrumentation
//   (`make fuzz`): `DIFFUSION_FUZZ_TARGET=TARGET diffusion-fuzz [libFuzzer flags] CORPUS…`,
//   a libFuzzer binary. libFuzzer's own `main` cannot be used because SwiftPM links every
//   executable's entry point as `main`, so this one hands control to `LLVMFuzzerRunDriver`.

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// The target of this process, read once from `DIFFUSION_FUZZ_TARGET`.
private let fuzzTarget: FuzzTarget? = ProcessInfo.processInfo.environment["DIFFUSION_FUZZ_TARGET"].flatMap(FuzzTarget.init(rawValue:))
#endif

@main
struct DiffusionFuzz {
    static func main() {
        #if FUZZING
        guard fuzzTarget != nil else {
            fail("set DIFFUSION_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            fuzzTarget?.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
            return 0
        })
        #else
        replay(Array(CommandLine.arguments.dropFirst()))
        #endif
    }

    /// Runs every file named (folders: every file in them, in name order) through a target.
    static func replay(_ arguments: [String]) {
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name), arguments.count > 1 else {
            fail("usage: diffusion-fuzz TARGET FILE|DIR…   (targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var count = 0
        for path in arguments.dropFirst() {
            for file in files(at: path) {
                guard let data = FileManager.default.contents(atPath: file) else { fail("diffusion-fuzz: cannot read \(file)") }
                target.run([UInt8](data))
                count += 1
            }
        }
        print("diffusion-fuzz: \(target.rawValue): \(count) inputs ran")
    }

    static func files(at path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.sorted().map { (path as NSString).appendingPathComponent($0) }
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(64)
    }
}
