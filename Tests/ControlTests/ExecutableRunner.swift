import Foundation
import XCTest

/// Runs the built executables (diffusionctl, diffusiond) as black boxes.
enum ExecutableRunner {
    /// The build products folder: where the test bundle lives (`.build/<config>`).
    static var productsDirectory: URL {
        let bundle = Bundle(for: BundleLocator.self).bundleURL
        return bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
    }

    /// Path of a built executable; a test that needs one it cannot find fails.
    static func executable(_ name: String) throws -> String {
        let path = productsDirectory.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ControlTestError("\(path) is not built (run `swift build` first)")
        }
        return path
    }

    /// Runs `path arguments…`, optionally as another uid/gid through setpriv(1); returns
    /// (exit status, stdout, stderr).
    static func run(_ path: String, _ arguments: [String], asUID uid: UInt32? = nil, gid: UInt32? = nil,
                    environment: [String: String] = [:]) throws -> (Int32, String, String) {
        let process = Process()
        if let uid {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=\(uid)", "--regid=\(gid ?? uid)", "--clear-groups", "--", path] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        env["DIFFUSIOND_SOCKET"] = nil
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}

private final class BundleLocator {}
