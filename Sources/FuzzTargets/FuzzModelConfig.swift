import Foundation
import Models
import Sampling

/// A model folder's JSON files, each reader in turn on the same bytes.
enum FuzzModelConfig {
    static func run(_ bytes: [UInt8]) {
        guard let url = FuzzScratchFile.write(bytes, name: "config.json") else { return }
        _ = try? ModelIndex(contentsOf: url)
        _ = try? UNetConfig(contentsOf: url)
        _ = try? CLIPTextConfig(contentsOf: url)
        _ = try? VAEConfig(contentsOf: url)
        _ = try? TinyVAEConfig(contentsOf: url)
        _ = try? SchedulerConfig(contentsOf: url)
    }
}
