import Foundation
import Kernels
#if canImport(Glibc)
import Glibc
#endif

/// Element types defined by the safetensors format (https://github.com/huggingface/safetensors).
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case i64 = "I64", u64 = "U64", f64 = "F64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e4m3, .f8e5m2: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .i64, .u64, .f64: return 8
        }
    }
}

/// Where one tensor lives in a safetensors file.
public struct SafeTensorInfo: Sendable, Equatable {
    public var name: String
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    /// Byte range relative to the start of the data region (after the header).
    public var dataRange: Range<Int>
    /// Number of elements (product of `shape`; 1 for a scalar).
    public var elementCount: Int
}

/// A memory-mapped, fully validated `.safetensors` file.
///
/// Layout: 8-byte little-endian header length `n`, `n` bytes of JSON header
/// (`{"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {str: str}}`), then the
/// data region. Opening checks the header length against the file size, the JSON, each
/// entry's dtype and shape, that offsets lie in the data region, that each byte range has
/// exactly `product(shape) × dtype size` bytes, and that no two tensors overlap — so no later
/// read can leave the mapping.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Largest header accepted, as in the reference implementation.
    public static let maxHeaderLength: UInt64 = 100_000_000

    /// Path the file was opened from (used in every error).
    public let path: String
    /// Tensors by name.
    public let tensors: [String: SafeTensorInfo]
    /// The `__metadata__` string map, empty when absent.
    public let metadata: [String: String]

    private let base: UnsafeRawPointer?
    private let mappedLength: Int
    private let dataStart: Int

    /// Maps and validates the file at `path`.
    public convenience init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw SafeTensorsError.cannotOpen(file: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw SafeTensorsError.cannotOpen(file: path, reason: String(cString: strerror(errno)))
        }
        let size = Int(st.st_size)
        guard size > 0 else { throw SafeTensorsError.truncatedHeader(file: path, fileSize: 0) }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw SafeTensorsError.cannotOpen(file: path, reason: "mmap: " + String(cString: strerror(errno)))
        }
        do {
            try self.init(path: path, mapped: UnsafeRawPointer(p), length: size, ownsMapping: true)
        } catch {
            munmap(p, size)
            throw error
        }
    }

    private let ownsMapping: Bool

    private init(path: String, mapped: UnsafeRawPointer, length: Int, ownsMapping: Bool) throws {
        self.path = path
        self.ownsMapping = ownsMapping
        let parsed = try SafeTensorsFile.parse(path: path, bytes: UnsafeRawBufferPointer(start: mapped, count: length))
        self.tensors = parsed.tensors
        self.metadata = parsed.metadata
        self.dataStart = parsed.dataStart
        self.base = mapped
        self.mappedLength = length
    }

    deinit {
        if ownsMapping, let base { munmap(UnsafeMutableRawPointer(mutating: base), mappedLength) }
    }

    /// Names of all tensors, sorted.
    public var tensorNames: [String] { tensors.keys.sorted() }

    /// Raw bytes of tensor `name`, valid while this object lives.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let info = tensors[name] else { throw SafeTensorsError.tensorNotFound(file: path, tensor: name) }
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + dataStart + info.dataRange.lowerBound,
                                      count: info.dataRange.count)
    }

    /// Tells the kernel the pages of tensor `name` are no longer needed (after converting it),
    /// so loading a large checkpoint does not keep the whole mapping resident.
    public func dropPages(_ name: String) {
        guard let info = tensors[name], let base else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (dataStart + info.dataRange.lowerBound + page - 1) / page * page
        let end = (dataStart + info.dataRange.upperBound) / page * page
        if end > start { madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED) }
    }

    /// Tensor `name` converted to Float32 (from F32, F16, BF16 or F64), row-major.
    public func floats(_ name: String) throws -> [Float] {
        guard let info = tensors[name] else { throw SafeTensorsError.tensorNotFound(file: path, tensor: name) }
        let raw = try rawBytes(name)
        let n = info.elementCount
        var out = [Float](repeating: 0, count: n)
        try out.withUnsafeMutableBufferPointer { dst in
            try SafeTensorsFile.convert(raw, dtype: info.dtype, count: n, into: dst,
                                        file: path, tensor: name)
        }
        return out
    }

    /// Converts `count` elements of `raw` to Float32 into `dst` (unaligned reads are fine).
    static func convert(_ raw: UnsafeRawBufferPointer, dtype: SafeTensorsDType, count n: Int,
                        into dst: UnsafeMutableBufferPointer<Float>, file: String, tensor: String) throws {
        guard n > 0, let src = raw.baseAddress, let d = dst.baseAddress else { return }
        switch dtype {
        case .f32:
            memcpy(d, src, n * 4)
        case .f16:
            HalfConversion.float16ToFloat32(src, d, count: n)
        case .bf16:
            // bfloat16 is the top half of an IEEE float32.
            HalfConversion.bfloat16ToFloat32(src, d, count: n)
        case .f64:
            for i in 0..<n {
                let bits = UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
                d[i] = Float(Double(bitPattern: bits))
            }
        default:
            throw SafeTensorsError.notFloatingPoint(file: file, tensor: tensor, dtype: dtype.rawValue)
        }
    }

    // MARK: - Header parsing and validation

    struct Parsed {
        var tensors: [String: SafeTensorInfo]
        var metadata: [String: String]
        var dataStart: Int
    }

    /// Validates `bytes` (a whole file) and returns its tensor table.
    static func parse(path: String, bytes: UnsafeRawBufferPointer) throws -> Parsed {
        let size = bytes.count
        guard size >= 8, let start = bytes.baseAddress else {
            throw SafeTensorsError.truncatedHeader(file: path, fileSize: size)
        }
        let headerLength = UInt64(littleEndian: start.loadUnaligned(as: UInt64.self))
        guard headerLength <= maxHeaderLength, headerLength <= UInt64(size - 8) else {
            throw SafeTensorsError.headerLengthOutOfRange(file: path, headerLength: headerLength, fileSize: size)
        }
        let hlen = Int(headerLength)
        let headerData = Data(bytes: start + 8, count: hlen)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: headerData, options: [])
        } catch {
            throw SafeTensorsError.invalidJSON(file: path, reason: "\(error.localizedDescription)")
        }
        guard let dict = object as? [String: Any] else {
            throw SafeTensorsError.invalidJSON(file: path, reason: "top level is not an object")
        }
        let dataStart = 8 + hlen
        let dataSize = size - dataStart
        var metadata: [String: String] = [:]
        var tensors: [String: SafeTensorInfo] = [:]
        for (name, value) in dict {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw SafeTensorsError.invalidJSON(file: path, reason: "__metadata__ is not an object")
                }
                for (k, v) in m {
                    guard let s = v as? String else {
                        throw SafeTensorsError.invalidJSON(file: path, reason: "__metadata__ value '\(k)' is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            tensors[name] = try parseEntry(name: name, value: value, path: path, dataSize: dataSize)
        }
        // No two byte ranges may overlap (empty tensors occupy no bytes).
        let ordered = tensors.values.filter { !$0.dataRange.isEmpty }
            .sorted { ($0.dataRange.lowerBound, $0.name) < ($1.dataRange.lowerBound, $1.name) }
        if ordered.count > 1 {
            for i in 1..<ordered.count where ordered[i].dataRange.lowerBound < ordered[i - 1].dataRange.upperBound {
                throw SafeTensorsError.overlappingTensors(file: path, first: ordered[i - 1].name, second: ordered[i].name)
            }
        }
        return Parsed(tensors: tensors, metadata: metadata, dataStart: dataStart)
    }

    private static func intValue(_ any: Any) -> Int? {
        guard let n = any as? NSNumber else { return nil }
        // Reject non-integral numbers.
        let d = n.doubleValue
        guard d.rounded() == d, abs(d) < 9.0e18 else { return nil }
        return n.intValue
    }

    private static func parseEntry(name: String, value: Any, path: String, dataSize: Int) throws -> SafeTensorInfo {
        guard let entry = value as? [String: Any] else {
            throw SafeTensorsError.invalidEntry(file: path, tensor: name, reason: "not an object")
        }
        guard let dtypeString = entry["dtype"] as? String else {
            throw SafeTensorsError.invalidEntry(file: path, tensor: name, reason: "missing or non-string 'dtype'")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeString) else {
            throw SafeTensorsError.unknownDType(file: path, tensor: name, dtype: dtypeString)
        }
        guard let shapeArray = entry["shape"] as? [Any] else {
            throw SafeTensorsError.invalidEntry(file: path, tensor: name, reason: "missing or non-array 'shape'")
        }
        var shape: [Int] = []
        for d in shapeArray {
            guard let v = intValue(d) else {
                throw SafeTensorsError.invalidEntry(file: path, tensor: name, reason: "shape holds a non-integer")
            }
            shape.append(v)
        }
        var count = 1
        for d in shape {
            guard d >= 0 else { throw SafeTensorsError.invalidShape(file: path, tensor: name, shape: shape) }
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw SafeTensorsError.invalidShape(file: path, tensor: name, shape: shape) }
            count = p
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw SafeTensorsError.invalidShape(file: path, tensor: name, shape: shape) }
        guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
              let begin = intValue(offsets[0]), let end = intValue(offsets[1]) else {
            throw SafeTensorsError.invalidEntry(file: path, tensor: name, reason: "'data_offsets' must be two integers")
        }
        guard begin >= 0, end >= begin, end <= dataSize else {
            throw SafeTensorsError.offsetsOutOfRange(file: path, tensor: name, begin: begin, end: end, dataSize: dataSize)
        }
        guard end - begin == bytes else {
            throw SafeTensorsError.sizeMismatch(file: path, tensor: name, expectedBytes: bytes, actualBytes: end - begin)
        }
        return SafeTensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end, elementCount: count)
    }
}
