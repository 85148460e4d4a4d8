import XCTest
@testable import Kernels

final class ZeroedMemoryTests: XCTestCase {
    /// Blocks that may take huge pages start on a 2 MiB boundary (Linux backs only whole
    /// aligned stretches with them), come zeroed, can be written to their last byte, and go
    /// back whole; smaller and opted-out blocks keep the 64-byte alignment every tensor needs.
    func testHugePageBlocksStartOn2MiBBoundariesAndAreWholeAndZeroed() {
        let huge = ZeroedMemory.hugePageThreshold
        for bytes in [huge, huge + 1, 3 * huge + 4095, 5 * huge + 12_345] {
            let p = ZeroedMemory.allocate(bytes, what: "test")
            XCTAssertEqual(Int(bitPattern: p) % huge, 0, "\(bytes) bytes at \(p)")
            let b = p.assumingMemoryBound(to: UInt8.self)
            XCTAssertEqual(b[0], 0)
            XCTAssertEqual(b[bytes - 1], 0)
            b[0] = 1
            b[bytes - 1] = 2
            XCTAssertEqual(b[bytes - 1], 2)
            ZeroedMemory.free(p, bytes: bytes)
        }
        for (bytes, hugePages) in [(ZeroedMemory.mappingThreshold, true), (huge, false), (1000, true)] {
            let p = ZeroedMemory.allocate(bytes, what: "test", hugePages: hugePages)
            XCTAssertEqual(Int(bitPattern: p) % 64, 0)
            XCTAssertEqual(p.assumingMemoryBound(to: UInt8.self)[bytes - 1], 0)
            ZeroedMemory.free(p, bytes: bytes)
        }
    }
}
