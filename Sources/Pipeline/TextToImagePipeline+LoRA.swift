import Foundation
import Models
#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 digests of files, remembered by (path, size, modification time), so a file is
/// read once however many images record its hash.
struct FileHashCache {
    private struct Key: Hashable {
        var path: String, size: Int64, modified: Int64, nanoseconds: Int, addnet: Bool
    }
    private var digests: [Key: String] = [:]

    /// Full hex digest of `url` (`addnet`: of the bytes after the safetensors header), nil
    /// when the file cannot be read.
    mutating func digest(_ url: URL, addnet: Bool) -> String? {
        var st = stat()
        guard stat(url.path, &st) == 0 else { return nil }
        let key = Key(path: url.path, size: Int64(st.st_size), modified: Int64(st.st_mtim.tv_sec),
                      nanoseconds: Int(st.st_mtim.tv_nsec), addnet: addnet)
        if let known = digests[key] { return known }
        let digest = addnet ? try? SHA256.addnetHexDigest(ofSafeTensors: url) : try? SHA256.hexDigest(ofFile: url)
        if let digest { digests[key] = digest }
        return digest
    }
}

extension TextToImagePipeline {
    /// The file AUTOMATIC1111's `Model hash` is taken from: a single-file checkpoint itself
    /// (`modelDirectory` is then the file), for a diffusers folder the UNet's weights
    /// (`unet/diffusion_pytorch_model.safetensors`, the file the loader reads; the first one
    /// in name order when sharded).
    public var modelHashFile: URL? {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: modelDirectory.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            return modelDirectory
        }
        let unet = modelDirectory.appendingPathComponent("unet")
        return SafeTensorsFile.componentWeightFiles(in: unet).first
    }

    /// First 10 hex digits of the SHA-256 of `modelHashFile` (AUTOMATIC1111's `sd_models.model_hash`
    /// short form: `Model hash: …`); hashing a 3.4 GB UNet takes seconds, once per model load.
    public var modelHash: String? {
        guard let file = modelHashFile, let digest = hashes.digest(file, addnet: false) else { return nil }
        return String(digest.prefix(10))
    }

    /// First 12 hex digits of AUTOMATIC1111's addnet hash of the LoRA file (SHA-256 of the
    /// bytes after the safetensors header, `hashes.addnet_hash_safetensors`; what
    /// `Lora hashes: "name: hash"` records).
    public func loraHash(_ lora: LoRASelection) -> String? {
        hashes.digest(lora.file, addnet: true).map { String($0.prefix(12)) }
    }
}
