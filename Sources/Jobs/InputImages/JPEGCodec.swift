import CJPEG
import Pipeline

/// JPEG decoding through libjpeg-turbo's TurboJPEG API: the islow DCT and fancy upsampling
/// (libjpeg's defaults, as Pillow decodes), and any warning (a truncated or damaged stream)
/// counts as an error, so a corrupt file is refused rather than half-decoded.
public enum JPEGCodec {
    /// Width and height from the JPEG's frame header, without decoding the image.
    public static func size(_ bytes: [UInt8]) throws -> (width: Int, height: Int) {
        try withDecompressor { handle in
            var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
            let status = bytes.withUnsafeBufferPointer {
                tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &width, &height, &subsampling, &colorspace)
            }
            guard status == 0 else { throw JPEGError(reason: message(handle)) }
            return (Int(width), Int(height))
        }
    }

    /// Decodes to 8-bit RGB (grayscale is expanded; CMYK is refused by libjpeg-turbo).
    public static func decode(_ bytes: [UInt8]) throws -> RGBImage {
        try withDecompressor { handle in
            var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
            let header = bytes.withUnsafeBufferPointer {
                tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &width, &height, &subsampling, &colorspace)
            }
            guard header == 0 else { throw JPEGError(reason: message(handle)) }
            guard width > 0, height > 0 else { throw JPEGError(reason: "empty image \(width)x\(height)") }
            var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * 3)
            let flags = TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING
            let status = bytes.withUnsafeBufferPointer { input in
                pixels.withUnsafeMutableBufferPointer { output in
                    tjDecompress2(handle, input.baseAddress, UInt(input.count), output.baseAddress, width, 0, height,
                                  Int32(TJPF_RGB.rawValue), Int32(flags))
                }
            }
            guard status == 0 else { throw JPEGError(reason: message(handle)) }
            return RGBImage(width: Int(width), height: Int(height), pixels: pixels)
        }
    }

    private static func withDecompressor<T>(_ body: (tjhandle) throws -> T) throws -> T {
        guard let handle = tjInitDecompress() else { throw JPEGError(reason: "cannot start the JPEG decoder") }
        defer { tjDestroy(handle) }
        return try body(handle)
    }

    private static func message(_ handle: tjhandle) -> String {
        guard let text = tjGetErrorStr2(handle) else { return "libjpeg-turbo failed" }
        return String(cString: text)
    }
}

/// A JPEG could not be read; `reason` is libjpeg-turbo's message.
public struct JPEGError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public var description: String { "JPEG: \(reason)" }
}
