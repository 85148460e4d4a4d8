import XCTest
@testable import Kernels

final class TensorTests: XCTestCase {
    func testStorageIsAlignedAndZeroed() {
        for n in [1, 7, 64, 1000] {
            let t = Tensor(zeros: [n])
            XCTAssertEqual(Int(bitPattern: t.data) % 64, 0)
            XCTAssertEqual(t.toArray(), [Float](repeating: 0, count: n))
        }
    }

    func testLargeBlocksAskForHugePagesAndSmallOrDecliningOnesDoNot() throws {
        // A weight streamed from memory on 4 KiB pages misses the TLB every page; blocks of
        // 2 MiB or more are advised MADV_HUGEPAGE (VmFlags "hg" in /proc/self/smaps).
        func flags(of p: UnsafeRawPointer) throws -> [Substring]? {
            // /proc files report size 0, so read them to the end rather than by their size.
            let handle = try XCTUnwrap(FileHandle(forReadingAtPath: "/proc/self/smaps"))
            defer { try? handle.close() }
            let smaps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
            let address = UInt(bitPattern: p)
            var inside = false
            for line in smaps.split(separator: "\n") {
                let fields = line.split(separator: " ")
                if let range = fields.first, range.contains("-"), fields.count >= 5 {
                    let ends = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                    inside = ends.count == 2 && ends[0] <= address && address < ends[1]
                } else if inside && line.hasPrefix("VmFlags:") {
                    return Array(fields.dropFirst())
                }
            }
            return nil
        }
        // Where the kernel refuses the advice (no transparent huge pages) or does not show it,
        // there is nothing to check.
        let probeBytes = 2 << 20
        guard let probe = mmap(nil, probeBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              probe != MAP_FAILED else { return XCTFail("cannot map a probe") }
        defer { munmap(probe, probeBytes) }
        try XCTSkipUnless(madvise(probe, probeBytes, MADV_HUGEPAGE) == 0, "this kernel refuses MADV_HUGEPAGE")
        try XCTSkipUnless(try flags(of: probe)?.contains("hg") == true, "this kernel does not show the advice in smaps")
        let big = TensorStorage(capacity: (2 << 20) / 4), small = TensorStorage(capacity: (1 << 20) / 4)
        let declined = TensorStorage(capacity: (2 << 20) / 4, hugePages: false)
        try withExtendedLifetime((big, small, declined)) {
            let declinedFlags = try XCTUnwrap(try flags(of: declined.base), "no mapping holds a declining tensor")
            XCTAssertFalse(declinedFlags.contains("hg"), "a tensor made with hugePages: false has flags \(declinedFlags)")
            let bigFlags = try XCTUnwrap(try flags(of: big.base), "no mapping holds a 2 MiB tensor")
            XCTAssertTrue(bigFlags.contains("hg"), "a 2 MiB tensor's mapping has flags \(bigFlags)")
            let smallFlags = try XCTUnwrap(try flags(of: small.base), "no mapping holds a 1 MiB tensor")
            XCTAssertFalse(smallFlags.contains("hg"), "a 1 MiB tensor's mapping has flags \(smallFlags)")
        }
    }

    func testViewsShareStorage() {
        let t = Tensor(shape: [2, 3, 2], values: (0..<12).map(Float.init))
        XCTAssertEqual(t.batch(1).toArray(), [6, 7, 8, 9, 10, 11])
        XCTAssertEqual(t.batch(1).shape, [3, 2])
        XCTAssertEqual(t.batches(1..<2).shape, [1, 3, 2])
        let r = t.reshaped([6, 2])
        r.data[0] = 42
        XCTAssertEqual(t.toArray()[0], 42)
        XCTAssertEqual(t.view(offset: 3, shape: [2]).toArray(), [3, 4])
        XCTAssertEqual(t.dim(-1), 2)
    }

    func testHalfConversionMatchesScalarDecoder() {
        // Every finite half bit pattern, decoded by the vector path and the scalar reference.
        var bits: [UInt16] = []
        for b in 0...UInt16.max where (b >> 10) & 0x1F != 31 { bits.append(b) }
        bits.append(0x7C00); bits.append(0xFC00)   // ±inf
        var out = [Float](repeating: 0, count: bits.count)
        // Offset by one byte to prove unaligned sources work.
        var bytes = [UInt8](repeating: 0, count: bits.count * 2 + 1)
        for (i, b) in bits.enumerated() { bytes[1 + 2 * i] = UInt8(b & 0xFF); bytes[2 + 2 * i] = UInt8(b >> 8) }
        bytes.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { HalfConversion.float16ToFloat32(raw.baseAddress! + 1, $0.baseAddress!, count: bits.count) }
        }
        for (i, b) in bits.enumerated() {
            XCTAssertEqual(out[i], HalfConversion.halfBitsToFloat(b), "half bits \(String(b, radix: 16))")
        }
        XCTAssertEqual(HalfConversion.halfBitsToFloat(0x3C00), 1)
        XCTAssertEqual(HalfConversion.halfBitsToFloat(0xC000), -2)
        XCTAssertEqual(HalfConversion.halfBitsToFloat(0x0001), 5.960_464_5e-8)
    }

    func testBFloat16Conversion() {
        let values: [Float] = [1, -2.5, 3.140625, 0, -0.0078125, 65280, 1e-3, 7, 9, -11, 12.5]
        let bits = values.map { UInt16($0.bitPattern >> 16) }
        var out = [Float](repeating: 0, count: values.count)
        bits.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { HalfConversion.bfloat16ToFloat32(raw.baseAddress!, $0.baseAddress!, count: bits.count) }
        }
        for i in 0..<values.count { XCTAssertEqual(out[i], Float(bitPattern: UInt32(bits[i]) << 16)) }
        XCTAssertEqual(out[0], 1); XCTAssertEqual(out[1], -2.5); XCTAssertEqual(out[5], 65280)
    }
}
