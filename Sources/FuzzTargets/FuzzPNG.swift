import Pipeline
import Jobs

/// PNG files: the chunk reader (what metadata checks use) and libpng's decoder; a decoded
/// image has exactly width × height × 3 bytes.
enum FuzzPNG {
    static func run(_ bytes: [UInt8]) {
        if let chunks = try? PNGChunks.read(bytes) {
            FuzzInvariant.check(chunks.last?.type == "IEND", "chunk list without IEND accepted")
        }
        if let image = try? PNGCodec.decode(bytes) {
            FuzzInvariant.check(image.pixels.count == image.width * image.height * 3, "\(image.pixels.count) bytes for \(image.width)x\(image.height)")
        }
    }
}
