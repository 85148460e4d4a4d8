import CPNG
import Foundation
import Pipeline

/// A PNG could not be encoded or decoded; `reason` is libpng's message.
public struct PNGError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public var description: String { "PNG: \(reason)" }
}

/// PNG encoding and decoding through libpng's simplified API (`png_image_*`), which reports
/// errors by return value; libpng's full API would report them by `longjmp`, which Swift
/// cannot catch. Text chunks are spliced in by `PNGChunks`.
public enum PNGCodec {
    /// Encodes an 8-bit RGB image, adding one text chunk per `(keyword, text)` right after IHDR.
    public static func encode(_ image: RGBImage, text: [(String, String)] = []) throws -> [UInt8] {
        guard image.width > 0, image.height > 0 else { throw PNGError(reason: "empty image \(image.width)x\(image.height)") }
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = UInt32(PNG_FORMAT_FLAG_COLOR)
        var size: png_alloc_size_t = 0
        let encoded: [UInt8] = try image.pixels.withUnsafeBytes { pixels in
            guard png_image_write_to_memory(&png, nil, &size, 0, pixels.baseAddress, 0, nil) != 0 else {
                throw PNGError(reason: message(&png))
            }
            var out = [UInt8](repeating: 0, count: Int(size))
            let ok = out.withUnsafeMutableBytes { buffer in
                png_image_write_to_memory(&png, buffer.baseAddress, &size, 0, pixels.baseAddress, 0, nil)
            }
            guard ok != 0 else { throw PNGError(reason: message(&png)) }
            return Array(out.prefix(Int(size)))
        }
        png_image_free(&png)
        var chunks: [PNGChunk] = []
        for (keyword, value) in text { chunks.append(try PNGChunk.text(keyword: keyword, value: value)) }
        return try PNGChunks.insertAfterHeader(chunks, into: encoded)
    }

    /// Decodes any PNG to 8-bit RGB (alpha composited on black by libpng).
    ///
    /// The chunk list is checked first (``PNGChunks/read(_:)``: every length inside the file,
    /// every CRC right): libpng allocates what a chunk's length field claims before it finds
    /// the data missing, so a 100-byte file claiming a 2 GB text chunk would cost 2 GB (found
    /// by `make fuzz`, target `png`).
    public static func decode(_ bytes: [UInt8]) throws -> RGBImage {
        _ = try PNGChunks.read(bytes)
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        let begun = bytes.withUnsafeBytes { png_image_begin_read_from_memory(&png, $0.baseAddress, $0.count) }
        guard begun != 0 else { throw PNGError(reason: message(&png)) }
        png.format = UInt32(PNG_FORMAT_FLAG_COLOR)
        let width = Int(png.width), height = Int(png.height)
        guard width > 0, height > 0, width * height <= 1 << 28 else {
            png_image_free(&png)
            throw PNGError(reason: "unreasonable size \(width)x\(height)")
        }
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let finished = pixels.withUnsafeMutableBytes { png_image_finish_read(&png, nil, $0.baseAddress, 0, nil) }
        guard finished != 0 else { throw PNGError(reason: message(&png)) }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    private static func message(_ png: inout png_image) -> String {
        let text = withUnsafeBytes(of: &png.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        png_image_free(&png)
        return text.isEmpty ? "libpng failed" : text
    }
}
