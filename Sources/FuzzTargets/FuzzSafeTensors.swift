import Foundation
import Models

/// `.safetensors` files: every tensor the header admits lies inside the file and converts to
/// exactly its element count; the single-file and LoRA readers refuse or accept without
/// crashing.
enum FuzzSafeTensors {
    static func run(_ bytes: [UInt8]) {
        guard let url = FuzzScratchFile.write(bytes, name: "input.safetensors") else { return }
        if let file = try? SafeTensorsFile(path: url.path) {
            for name in file.tensorNames {
                guard let info = file.tensors[name] else { continue }
                FuzzInvariant.check(info.dataRange.lowerBound >= 0, "\(name) starts before the data")
                guard info.elementCount <= 1 << 16, let values = try? file.floats(name) else { continue }
                FuzzInvariant.check(values.count == info.elementCount, "\(name): \(values.count) of \(info.elementCount) values")
            }
        }
        _ = try? SingleFileCheckpoint(url: url)
        _ = try? LoRAFile(url: url)
    }
}
