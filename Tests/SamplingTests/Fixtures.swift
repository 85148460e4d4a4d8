import Foundation
import XCTest

/// Loads the JSON references that tools/fixtures/sampling_refs.py records from torch/diffusers.
enum SamplingFixtures {
    static var directory: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("Fixtures/sampling")
    }

    static func load<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        let url = directory.appendingPathComponent(name)
        let data = try Data(contentsOf: url)
        return try JSONDecoder().decode(T.self, from: data)
    }
}

/// FNV-1a 64 over the little-endian bytes of 32-bit patterns (same as the fixture script).
func fnv1a64(_ patterns: [UInt32]) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for pattern in patterns {
        for shift in stride(from: 0, to: 32, by: 8) {
            hash ^= UInt64((pattern >> UInt32(shift)) & 0xFF)
            hash = hash &* 0x0000_0100_0000_01B3
        }
    }
    return hash
}
