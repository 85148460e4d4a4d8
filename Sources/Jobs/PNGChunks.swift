/// One PNG chunk (PNG spec §5.3): type and data; length and CRC are computed on output.
public struct PNGChunk: Equatable, Sendable {
    public var type: String
    public var data: [UInt8]

    public init(type: String, data: [UInt8]) {
        self.type = type
        self.data = data
    }

    /// A `tEXt` chunk when `value` is Latin-1, else an uncompressed `iTXt` (UTF-8), as Pillow
    /// (and so AUTOMATIC1111) writes them.
    public static func text(keyword: String, value: String) throws -> PNGChunk {
        let key = Array(keyword.utf8)
        guard (1...79).contains(key.count), key.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
            throw PNGError(reason: "invalid text keyword \(keyword)")
        }
        if value.unicodeScalars.allSatisfy({ $0.value <= 0xFF && $0.value != 0 }) {
            return PNGChunk(type: "tEXt", data: key + [0] + value.unicodeScalars.map { UInt8($0.value) })
        }
        // keyword NUL, compression flag 0, method 0, empty language NUL, empty translated keyword NUL, text.
        return PNGChunk(type: "iTXt", data: key + [0, 0, 0, 0, 0] + Array(value.utf8.filter { $0 != 0 }))
    }

    /// The keyword and text of a `tEXt` or uncompressed `iTXt` chunk.
    public var textEntry: (keyword: String, text: String)? {
        guard let nul = data.firstIndex(of: 0) else { return nil }
        let keyword = String(decoding: data[..<nul], as: UTF8.self)
        if type == "tEXt" {
            return (keyword, String(String.UnicodeScalarView(data[(nul + 1)...].map { Unicode.Scalar($0) })))
        }
        guard type == "iTXt", nul + 3 <= data.count, data[nul + 1] == 0 else { return nil }
        var i = nul + 3
        for _ in 0..<2 {
            guard let end = data[i...].firstIndex(of: 0) else { return nil }
            i = end + 1
        }
        return (keyword, String(decoding: data[i...], as: UTF8.self))
    }
}

/// Reading and splicing the chunk list of a PNG file.
public enum PNGChunks {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Every chunk of `png`, checking the signature, lengths and CRCs.
    public static func read(_ png: [UInt8]) throws -> [PNGChunk] {
        guard png.count >= 8, Array(png[0..<8]) == signature else { throw PNGError(reason: "not a PNG (bad signature)") }
        var chunks: [PNGChunk] = []
        var i = 8
        while i < png.count {
            guard i + 12 <= png.count else { throw PNGError(reason: "truncated chunk at byte \(i)") }
            let length = Int(bigEndian32(png, i))
            guard length <= png.count - i - 12 else { throw PNGError(reason: "truncated chunk at byte \(i)") }
            let typeBytes = Array(png[(i + 4)..<(i + 8)])
            let data = Array(png[(i + 8)..<(i + 8 + length)])
            guard CRC32.checksum(typeBytes + data) == bigEndian32(png, i + 8 + length) else {
                throw PNGError(reason: "CRC mismatch in chunk at byte \(i)")
            }
            chunks.append(PNGChunk(type: String(decoding: typeBytes, as: UTF8.self), data: data))
            i += 12 + length
        }
        guard chunks.last?.type == "IEND" else { throw PNGError(reason: "missing IEND (file is truncated)") }
        return chunks
    }

    /// Inserts `chunks` right after IHDR (so before every IDAT), each with its CRC-32.
    public static func insertAfterHeader(_ chunks: [PNGChunk], into png: [UInt8]) throws -> [UInt8] {
        // Signature (8) + IHDR: length (4) + type (4) + 13 data bytes + CRC (4).
        let headerEnd = 8 + 25
        guard png.count > headerEnd, Array(png[0..<8]) == signature, png[12..<16].elementsEqual("IHDR".utf8) else {
            throw PNGError(reason: "encoder output does not start with IHDR")
        }
        var out = Array(png[0..<headerEnd])
        for chunk in chunks { out += serialize(chunk) }
        out += png[headerEnd...]
        return out
    }

    /// Length, type, data, CRC-32 over type and data.
    public static func serialize(_ chunk: PNGChunk) -> [UInt8] {
        let type = Array(chunk.type.utf8)
        return be32(UInt32(chunk.data.count)) + type + chunk.data + be32(CRC32.checksum(type + chunk.data))
    }

    private static func be32(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    private static func bigEndian32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }
}

/// CRC-32 as PNG uses it (ISO 3309 / ITU-T V.42, polynomial 0xEDB88320 reflected; PNG spec Annex D).
public enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
