/// Everything that can be wrong with a `.safetensors` file. Every case names the file and,
/// where one is involved, the tensor, so a user can tell which download is broken.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened, stat'ed or mapped.
    case cannotOpen(file: String, reason: String)
    /// The file is shorter than the 8-byte header-length prefix.
    case truncatedHeader(file: String, fileSize: Int)
    /// The header length prefix points past the end of the file or over the size limit.
    case headerLengthOutOfRange(file: String, headerLength: UInt64, fileSize: Int)
    /// The header is not a UTF-8 JSON object.
    case invalidJSON(file: String, reason: String)
    /// A header entry is not of the form `{"dtype": …, "shape": […], "data_offsets": [b, e]}`.
    case invalidEntry(file: String, tensor: String, reason: String)
    /// The dtype string is not one the safetensors format defines.
    case unknownDType(file: String, tensor: String, dtype: String)
    /// The shape has a negative dimension or its element count overflows.
    case invalidShape(file: String, tensor: String, shape: [Int])
    /// `data_offsets` are reversed or reach past the data region.
    case offsetsOutOfRange(file: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    /// The byte range does not hold exactly `product(shape) × dtype size` bytes.
    case sizeMismatch(file: String, tensor: String, expectedBytes: Int, actualBytes: Int)
    /// Two tensors share bytes.
    case overlappingTensors(file: String, first: String, second: String)
    /// A tensor was asked for that the file does not hold.
    case tensorNotFound(file: String, tensor: String)
    /// The tensor's dtype cannot be converted to Float32 (integers, booleans, fp8).
    case notFloatingPoint(file: String, tensor: String, dtype: String)

    public var description: String {
        switch self {
        case let .cannotOpen(file, reason):
            return "\(file): cannot open safetensors file: \(reason)"
        case let .truncatedHeader(file, size):
            return "\(file): truncated safetensors file (\(size) bytes, need at least 8 for the header length)"
        case let .headerLengthOutOfRange(file, length, size):
            return "\(file): header length \(length) does not fit in the file (\(size) bytes) or exceeds the 100 MB limit; the file is truncated or not safetensors"
        case let .invalidJSON(file, reason):
            return "\(file): header is not a valid JSON object: \(reason)"
        case let .invalidEntry(file, tensor, reason):
            return "\(file): tensor '\(tensor)': invalid header entry: \(reason)"
        case let .unknownDType(file, tensor, dtype):
            return "\(file): tensor '\(tensor)': unknown dtype '\(dtype)'"
        case let .invalidShape(file, tensor, shape):
            return "\(file): tensor '\(tensor)': invalid shape \(shape) (negative dimension or too many elements)"
        case let .offsetsOutOfRange(file, tensor, begin, end, dataSize):
            return "\(file): tensor '\(tensor)': data_offsets [\(begin), \(end)] are outside the data region of \(dataSize) bytes"
        case let .sizeMismatch(file, tensor, expected, actual):
            return "\(file): tensor '\(tensor)': holds \(actual) bytes but its shape and dtype need \(expected)"
        case let .overlappingTensors(file, first, second):
            return "\(file): tensors '\(first)' and '\(second)' overlap"
        case let .tensorNotFound(file, tensor):
            return "\(file): no tensor named '\(tensor)'"
        case let .notFloatingPoint(file, tensor, dtype):
            return "\(file): tensor '\(tensor)' has dtype \(dtype), expected F32, F16, BF16 or F64"
        }
    }
}
