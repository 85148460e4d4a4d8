import Foundation

/// A per-process file in /dev/shm (or the temp folder) that inputs are written to, for the
/// parsers that read a path, as the daemon's do (memory-mapped safetensors, config.json).
enum FuzzScratchFile {
    static let folder: URL = {
        let shm = URL(fileURLWithPath: "/dev/shm", isDirectory: true)
        let base = FileManager.default.isWritableFile(atPath: shm.path) ? shm : FileManager.default.temporaryDirectory
        return base.appendingPathComponent("diffusion-fuzz-\(getpid())", isDirectory: true)
    }()

    /// Writes `bytes` to `name` in the scratch folder and returns its URL; nil when it cannot.
    static func write(_ bytes: [UInt8], name: String) -> URL? {
        let url = folder.appendingPathComponent(name)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(bytes).write(to: url)
            return url
        } catch {
            return nil
        }
    }
}
