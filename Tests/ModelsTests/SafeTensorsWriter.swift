import Foundation
@testable import Models

/// One tensor to write: name, safetensors dtype, shape and its raw little-endian bytes.
struct TensorEntry {
    var name: String
    var dtype: String
    var shape: [Int]
    var bytes: [UInt8]

    /// F16 zeros of `shape`.
    static func zeros(_ name: String, _ shape: [Int], dtype: String = "F16") -> TensorEntry {
        let size = dtype == "F32" ? 4 : 2
        return TensorEntry(name: name, dtype: dtype, shape: shape, bytes: [UInt8](repeating: 0, count: shape.reduce(1, *) * size))
    }

    /// F16 values (small integers and simple fractions are exact).
    static func half(_ name: String, _ shape: [Int], _ values: [Float]) -> TensorEntry {
        var bytes: [UInt8] = []
        for v in values {
            let bits = Float16(v).bitPattern
            bytes += [UInt8(bits & 0xff), UInt8(bits >> 8)]
        }
        return TensorEntry(name: name, dtype: "F16", shape: shape, bytes: bytes)
    }
}

/// Writes a safetensors file (header padded to 8 bytes, tensors in the given order).
func writeSafeTensors(_ entries: [TensorEntry], to url: URL) throws {
    var header: [String: Any] = [:]
    var offset = 0
    for e in entries {
        header[e.name] = ["dtype": e.dtype, "shape": e.shape, "data_offsets": [offset, offset + e.bytes.count]] as [String: Any]
        offset += e.bytes.count
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var out = Data()
    var length = UInt64(json.count).littleEndian
    withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
    out.append(json)
    for e in entries { out.append(contentsOf: e.bytes) }
    try out.write(to: url)
}

/// The tensors of a safetensors file, as entries (sorted by name).
func readEntries(_ url: URL) throws -> [TensorEntry] {
    let file = try SafeTensorsFile(path: url.path)
    return try file.tensorNames.map { name in
        guard let info = file.tensors[name] else { throw SafeTensorsError.tensorNotFound(file: url.path, tensor: name) }
        return TensorEntry(name: name, dtype: info.dtype.rawValue, shape: info.shape, bytes: [UInt8](try file.rawBytes(name)))
    }
}

/// A temporary folder removed by `cleanUp()`.
final class TemporaryFolder {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("single-file-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
    func cleanUp() { try? FileManager.default.removeItem(at: url) }
}
