import Foundation
import Pipeline

/// Binary PPM (P6, maxval 255) reading and writing, the format of the adherence fixtures.
public enum PPM {
    public struct FormatError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "\(path): not a binary PPM (P6, maxval 255): \(reason)" }
    }

    public static func read(_ url: URL) throws -> RGBImage {
        try decode(Data(contentsOf: url), path: url.path)
    }

    public static func decode(_ data: Data, path: String = "<data>") throws -> RGBImage {
        let bytes = [UInt8](data)
        var pos = 0
        func token() throws -> String {
            // Skip whitespace and '#' comments.
            while pos < bytes.count {
                if bytes[pos] == UInt8(ascii: "#") {
                    while pos < bytes.count && bytes[pos] != 10 { pos += 1 }
                } else if bytes[pos] == 32 || bytes[pos] == 10 || bytes[pos] == 13 || bytes[pos] == 9 {
                    pos += 1
                } else { break }
            }
            let start = pos
            while pos < bytes.count && !(bytes[pos] == 32 || bytes[pos] == 10 || bytes[pos] == 13 || bytes[pos] == 9) { pos += 1 }
            guard pos > start else { throw FormatError(path: path, reason: "header ends early") }
            return String(decoding: bytes[start..<pos], as: UTF8.self)
        }
        guard try token() == "P6" else { throw FormatError(path: path, reason: "magic is not P6") }
        guard let w = Int(try token()), let h = Int(try token()), w > 0, h > 0 else {
            throw FormatError(path: path, reason: "bad width or height")
        }
        guard try token() == "255" else { throw FormatError(path: path, reason: "maxval is not 255") }
        pos += 1  // the single whitespace byte after maxval
        guard bytes.count - pos >= w * h * 3 else {
            throw FormatError(path: path, reason: "\(bytes.count - pos) pixel bytes, expected \(w * h * 3)")
        }
        return RGBImage(width: w, height: h, pixels: Array(bytes[pos..<(pos + w * h * 3)]))
    }

    public static func encode(_ image: RGBImage) -> Data {
        var data = Data("P6\n\(image.width) \(image.height)\n255\n".utf8)
        data.append(contentsOf: image.pixels)
        return data
    }
}
