import Foundation
import Pipeline

/// The picture formats a job's `init_image` may be, told by their first bytes (never by the
/// file name), and how to read their size from the header alone.
public enum InputImageFormat: String, Codable, Sendable {
    case png
    case jpeg

    /// File name extension of the copy kept in the outbox.
    public var fileExtension: String { self == .png ? "png" : "jpg" }

    /// Extensions `init_images: DIR/` picks up (case-insensitive).
    public static let folderExtensions: Set<String> = ["png", "jpg", "jpeg"]

    /// The format of `bytes`, from the PNG signature or the JPEG SOI marker.
    public static func sniff(_ bytes: [UInt8]) -> InputImageFormat? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        return nil
    }

    /// Width and height from the header: PNG's IHDR (read here, before libpng sees the file),
    /// JPEG's frame header (libjpeg-turbo, header only).
    public func size(_ bytes: [UInt8]) throws -> (width: Int, height: Int) {
        switch self {
        case .png:
            // Signature (8), IHDR length (4) and type (4), then width and height, big-endian.
            guard bytes.count >= 24, Array(bytes[12..<16]) == Array("IHDR".utf8) else {
                throw PNGError(reason: "no IHDR header chunk")
            }
            func be32(_ at: Int) -> Int { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
            return (be32(16), be32(20))
        case .jpeg:
            return try JPEGCodec.size(bytes)
        }
    }

    /// Decodes to 8-bit RGB (PNG alpha composited on black by libpng).
    public func decode(_ bytes: [UInt8]) throws -> RGBImage {
        switch self {
        case .png: return try PNGCodec.decode(bytes)
        case .jpeg: return try JPEGCodec.decode(bytes)
        }
    }
}
