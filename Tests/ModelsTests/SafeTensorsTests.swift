import Foundation
import XCTest
@testable import Models

/// Hand-made good and bad safetensors files: every malformed one must give its typed error.
final class SafeTensorsTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("st-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    /// Writes `headerLength` (default: the JSON's length), the JSON, then `data`.
    private func write(_ json: String, data: [UInt8], headerLength: UInt64? = nil, name: String = "t.safetensors") throws -> String {
        let header = Array(json.utf8)
        var bytes: [UInt8] = []
        var len = (headerLength ?? UInt64(header.count)).littleEndian
        withUnsafeBytes(of: &len) { bytes.append(contentsOf: $0) }
        bytes += header
        bytes += data
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    private func floatBytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v -> [UInt8] in
            let b = v.bitPattern.littleEndian
            return [UInt8(b & 0xff), UInt8((b >> 8) & 0xff), UInt8((b >> 16) & 0xff), UInt8(b >> 24)]
        }
    }

    private func expectError(_ path: String, _ check: (SafeTensorsError) -> Bool,
                             file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try SafeTensorsFile(path: path)
            XCTFail("expected an error", file: file, line: line)
        } catch let e as SafeTensorsError {
            XCTAssertTrue(check(e), "unexpected error: \(e)", file: file, line: line)
            XCTAssertTrue(e.description.contains(path), "error does not name the file: \(e)", file: file, line: line)
        } catch {
            XCTFail("untyped error \(error)", file: file, line: line)
        }
    }

    func testReadsF32F16BF16AndMetadata() throws {
        // F32 [2,2] = 1,2,3,4; F16 [3] = 1.5, -2, 0.25; BF16 [2] = 1, -3
        let f32 = floatBytes([1, 2, 3, 4])
        let f16: [UInt8] = [0x00, 0x3e, 0x00, 0xc0, 0x00, 0x34]
        let bf16: [UInt8] = [0x80, 0x3f, 0x40, 0xc0]
        let json = """
        {"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},\
        "b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},"c":{"dtype":"BF16","shape":[2],"data_offsets":[22,26]},\
        "s":{"dtype":"F32","shape":[],"data_offsets":[26,30]}}
        """
        let path = try write(json, data: f32 + f16 + bf16 + floatBytes([7]))
        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(file.metadata, ["format": "pt"])
        XCTAssertEqual(file.tensorNames, ["a", "b", "c", "s"])
        XCTAssertEqual(file.tensors["a"]?.shape, [2, 2])
        XCTAssertEqual(try file.floats("a"), [1, 2, 3, 4])
        XCTAssertEqual(try file.floats("b"), [1.5, -2, 0.25])
        XCTAssertEqual(try file.floats("c"), [1, -3])
        XCTAssertEqual(try file.floats("s"), [7])
        XCTAssertThrowsError(try file.floats("missing")) { e in
            XCTAssertEqual(e as? SafeTensorsError, .tensorNotFound(file: path, tensor: "missing"))
        }
    }

    func testLongHalfTensorsUseTheVectorPathCorrectly() throws {
        // 19 elements: two 8-wide vectors plus a scalar tail, in F16 and BF16.
        let values: [Float] = (0..<19).map { Float($0) * 0.5 - 3 }
        var f16: [UInt8] = [], bf16: [UInt8] = []
        for v in values {
            let h = Float16(v).bitPattern
            f16 += [UInt8(h & 0xff), UInt8(h >> 8)]
            let b = UInt16(v.bitPattern >> 16)
            bf16 += [UInt8(b & 0xff), UInt8(b >> 8)]
        }
        let json = #"{"h":{"dtype":"F16","shape":[19],"data_offsets":[0,38]},"b":{"dtype":"BF16","shape":[19],"data_offsets":[38,76]}}"#
        let file = try SafeTensorsFile(path: try write(json, data: f16 + bf16))
        XCTAssertEqual(try file.floats("h"), values)
        XCTAssertEqual(try file.floats("b"), values)
    }

    func testTruncatedHeader() throws {
        let url = dir.appendingPathComponent("short.safetensors")
        try Data([1, 2, 3]).write(to: url)
        expectError(url.path) { if case .truncatedHeader = $0 { return true }; return false }
        let empty = dir.appendingPathComponent("empty.safetensors")
        try Data().write(to: empty)
        expectError(empty.path) { if case .truncatedHeader = $0 { return true }; return false }
    }

    func testHeaderLengthPastEOF() throws {
        let path = try write("{}", data: [], headerLength: 50)
        expectError(path) { if case .headerLengthOutOfRange(_, 50, _) = $0 { return true }; return false }
    }

    func testHugeHeaderLength() throws {
        let path = try write("{}", data: [], headerLength: UInt64.max)
        expectError(path) { if case .headerLengthOutOfRange = $0 { return true }; return false }
    }

    func testInvalidJSON() throws {
        let path = try write("{\"a\": {\"dtype\": ", data: [])
        expectError(path) { if case .invalidJSON = $0 { return true }; return false }
        let notObject = try write("[1,2]", data: [], name: "arr.safetensors")
        expectError(notObject) { if case .invalidJSON = $0 { return true }; return false }
    }

    func testOffsetsOutOfRange() throws {
        let path = try write(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: floatBytes([1, 2]))
        expectError(path) { $0 == .offsetsOutOfRange(file: path, tensor: "w", begin: 0, end: 16, dataSize: 8) }
        let reversed = try write(#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#, data: floatBytes([1, 2]), name: "rev.safetensors")
        expectError(reversed) { if case .offsetsOutOfRange(_, "w", 8, 4, _) = $0 { return true }; return false }
    }

    func testShapeSizeMismatch() throws {
        let path = try write(#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: floatBytes([1, 2]))
        expectError(path) { $0 == .sizeMismatch(file: path, tensor: "w", expectedBytes: 12, actualBytes: 8) }
    }

    func testUnknownDType() throws {
        let path = try write(#"{"w":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}"#, data: floatBytes([1]))
        expectError(path) { $0 == .unknownDType(file: path, tensor: "w", dtype: "F17") }
    }

    func testOverlappingTensors() throws {
        let json = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        let path = try write(json, data: floatBytes([1, 2, 3]))
        expectError(path) { $0 == .overlappingTensors(file: path, first: "a", second: "b") }
    }

    func testNegativeDimension() throws {
        let path = try write(#"{"w":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]}}"#, data: floatBytes([1, 2]))
        expectError(path) { $0 == .invalidShape(file: path, tensor: "w", shape: [-1, 2]) }
    }

    func testOverflowingShape() throws {
        let path = try write(#"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: floatBytes([1, 2]))
        expectError(path) { if case .invalidShape(_, "w", _) = $0 { return true }; return false }
    }

    func testMalformedEntries() throws {
        let noOffsets = try write(#"{"w":{"dtype":"F32","shape":[2]}}"#, data: floatBytes([1, 2]))
        expectError(noOffsets) { if case .invalidEntry(_, "w", _) = $0 { return true }; return false }
        let strShape = try write(#"{"w":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}"#, data: floatBytes([1, 2]), name: "s.safetensors")
        expectError(strShape) { if case .invalidEntry(_, "w", _) = $0 { return true }; return false }
    }

    func testIntegerTensorIsNotFloat() throws {
        let path = try write(#"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: [1, 0, 0, 0, 0, 0, 0, 0])
        let file = try SafeTensorsFile(path: path)
        XCTAssertThrowsError(try file.floats("ids")) { e in
            XCTAssertEqual(e as? SafeTensorsError, .notFloatingPoint(file: path, tensor: "ids", dtype: "I64"))
        }
    }

    func testMissingFile() {
        expectError(dir.appendingPathComponent("nope.safetensors").path) {
            if case .cannotOpen = $0 { return true }; return false
        }
    }
}
