import CYAML
import ControlProtocol

/// One libyaml parse event, reduced to what the job and config schemas need.
public enum YAMLEvent: Equatable {
    case documentStart
    case documentEnd
    case mappingStart
    case mappingEnd
    case sequenceStart
    case sequenceEnd
    /// A scalar's text; `plain` is false for quoted and block scalars.
    case scalar(String, plain: Bool)
    case streamEnd
}

/// Limits checked while events stream in, so hostile input is refused before it costs memory.
public struct YAMLSafetyLimits: Sendable {
    /// Deepest nesting of mappings/sequences accepted (a job is depth 1, its `loras` list of mappings 3, its `grid` axes' lists 4; the config depth 2).
    public var maxDepth: Int
    /// Longest scalar accepted, in bytes.
    public var maxScalarBytes: Int
    public init(maxDepth: Int = 4, maxScalarBytes: Int = 16 * 1024) {
        self.maxDepth = maxDepth
        self.maxScalarBytes = maxScalarBytes
    }
}

/// Pull parser over libyaml's event API (never builds a tree). Rejects aliases, anchors,
/// explicit tags, nesting past `limits.maxDepth`, scalars past `limits.maxScalarBytes`,
/// input that is not UTF-8 and binary data. Every error carries line and column.
///
/// Not thread-safe; one instance per input.
public final class YAMLEventStream {
    private let parser: UnsafeMutablePointer<yaml_parser_t>
    private let input: UnsafeMutableBufferPointer<UInt8>
    private let file: String
    private let limits: YAMLSafetyLimits
    private var depth = 0
    private var finished = false

    /// A UTF-8 byte-order mark at the start of `bytes` removed (editors on Windows write
    /// one); positions then count from the first real character.
    public static func removingByteOrderMark(_ bytes: [UInt8]) -> [UInt8] {
        bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
    }

    /// Validates the encoding of `bytes` and prepares parsing. `file` names the input in
    /// errors. A leading byte-order mark is skipped.
    public init(bytes: [UInt8], file: String, limits: YAMLSafetyLimits) throws {
        self.file = file
        self.limits = limits
        let bytes = YAMLEventStream.removingByteOrderMark(bytes)
        try YAMLEventStream.checkText(bytes, file: file)
        input = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(bytes.count, 1))
        _ = input.initialize(from: bytes)
        parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        parser.initialize(to: yaml_parser_t())
        guard yaml_parser_initialize(parser) != 0 else {
            parser.deallocate()
            input.deallocate()
            throw SourceError(file: file, line: 0, column: 0, message: "cannot initialise the YAML parser (out of memory)")
        }
        yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(parser, input.baseAddress, bytes.count)
    }

    deinit {
        yaml_parser_delete(parser)
        parser.deallocate()
        input.deallocate()
    }

    /// Next event with the 1-based position where it starts. After `.streamEnd` keeps returning it.
    public func next() throws -> (YAMLEvent, SourceMark) {
        if finished { return (.streamEnd, SourceMark(line: 0, column: 0)) }
        var event = yaml_event_t()
        guard yaml_parser_parse(parser, &event) != 0 else {
            throw syntaxError()
        }
        defer { yaml_event_delete(&event) }
        let mark = SourceMark(line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
        func fail(_ message: String) -> SourceError {
            SourceError(file: file, line: mark.line, column: mark.column, message: message)
        }
        switch event.type {
        case YAML_STREAM_START_EVENT:
            return try next()
        case YAML_STREAM_END_EVENT:
            finished = true
            return (.streamEnd, mark)
        case YAML_DOCUMENT_START_EVENT:
            return (.documentStart, mark)
        case YAML_DOCUMENT_END_EVENT:
            return (.documentEnd, mark)
        case YAML_ALIAS_EVENT:
            throw fail("YAML aliases (*name) are not allowed")
        case YAML_SCALAR_EVENT:
            let s = event.data.scalar
            if s.anchor != nil { throw fail("YAML anchors (&name) are not allowed") }
            if s.tag != nil { throw fail("YAML tags (!tag) are not allowed") }
            if s.length > limits.maxScalarBytes {
                throw fail("value is \(s.length) bytes long, more than the limit of \(limits.maxScalarBytes)")
            }
            let text = s.value.map {
                String(decoding: UnsafeBufferPointer(start: $0, count: s.length), as: UTF8.self)
            } ?? ""
            // Escapes ("\e", "\0", "\x9b" in double quotes) reach controls the raw text cannot hold.
            if let (position, scalar) = PrintableText.firstControl(in: text) {
                throw fail("control character \(PrintableText.describe(scalar)) at character \(position) of the value; "
                    + "only tab and newline are allowed")
            }
            return (.scalar(text, plain: s.style == YAML_PLAIN_SCALAR_STYLE), mark)
        case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
            let isMapping = event.type == YAML_MAPPING_START_EVENT
            let anchor = isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor
            let tag = isMapping ? event.data.mapping_start.tag : event.data.sequence_start.tag
            if anchor != nil { throw fail("YAML anchors (&name) are not allowed") }
            if tag != nil { throw fail("YAML tags (!tag) are not allowed") }
            depth += 1
            if depth > limits.maxDepth {
                throw fail("nesting deeper than \(limits.maxDepth) levels")
            }
            return (isMapping ? .mappingStart : .sequenceStart, mark)
        case YAML_SEQUENCE_END_EVENT:
            depth -= 1
            return (.sequenceEnd, mark)
        case YAML_MAPPING_END_EVENT:
            depth -= 1
            return (.mappingEnd, mark)
        default:
            return try next()
        }
    }

    private func syntaxError() -> SourceError {
        let p = parser.pointee
        let problem = p.problem.map { String(cString: $0) } ?? "syntax error"
        let context = p.context.map { String(cString: $0) + ": " } ?? ""
        // The reader (encoding, characters) reports a byte offset and leaves problem_mark at 0:0.
        if p.error == YAML_READER_ERROR {
            let mark = YAMLEventStream.position(ofByte: Int(p.problem_offset), in: UnsafeBufferPointer(input))
            return SourceError(file: file, line: mark.line, column: mark.column, message: "YAML syntax error: \(problem)")
        }
        return SourceError(file: file, line: Int(p.problem_mark.line) + 1,
                           column: Int(p.problem_mark.column) + 1,
                           message: "YAML syntax error: \(context)\(problem)")
    }

    /// 1-based line and column (in characters) of byte `offset` of UTF-8 `bytes`.
    static func position(ofByte offset: Int, in bytes: UnsafeBufferPointer<UInt8>) -> SourceMark {
        var line = 1, column = 1
        for i in 0..<min(offset, bytes.count) {
            if bytes[i] == 0x0A { line += 1; column = 1 } else if bytes[i] & 0xC0 != 0x80 { column += 1 }
        }
        return SourceMark(line: line, column: column)
    }

    /// Refuses input that is not UTF-8 text (binary junk, UTF-16, NUL bytes, control
    /// characters other than tab, newline and carriage return), naming where. A UTF-8
    /// byte-order mark at the start is allowed (libyaml skips it).
    static func checkText(_ bytes: [UInt8], file: String) throws {
        var line = 1, column = 1, i = 0
        while i < bytes.count {
            let b = bytes[i]
            var length = 1
            if b == 0 {
                throw SourceError(file: file, line: line, column: column, message: "binary data (NUL byte); a job file is UTF-8 text")
            } else if b < 0x20 && b != 0x09 && b != 0x0A && b != 0x0D || b == 0x7F {
                throw SourceError(file: file, line: line, column: column,
                                  message: "control character \(PrintableText.describe(Unicode.Scalar(b))); only tab and newline are allowed")
            } else if b == 0xC2, i + 1 < bytes.count, (0x80...0x9F).contains(bytes[i + 1]) {
                throw SourceError(file: file, line: line, column: column,
                                  message: "control character \(PrintableText.describe(Unicode.Scalar(bytes[i + 1]))); only tab and newline are allowed")
            } else if b < 0x80 {
                length = 1
            } else if b & 0xE0 == 0xC0, b >= 0xC2 {
                length = 2
            } else if b & 0xF0 == 0xE0 {
                length = 3
            } else if b & 0xF8 == 0xF0, b <= 0xF4 {
                length = 4
            } else {
                throw SourceError(file: file, line: line, column: column,
                                  message: "not UTF-8 text (byte 0x\(String(b, radix: 16)))")
            }
            if length > 1 {
                guard i + length <= bytes.count,
                      (1..<length).allSatisfy({ bytes[i + $0] & 0xC0 == 0x80 }) else {
                    throw SourceError(file: file, line: line, column: column,
                                      message: "not UTF-8 text (byte 0x\(String(b, radix: 16)))")
                }
                // Overlong 3/4-byte forms and surrogates.
                let b1 = bytes[i + 1]
                if (b == 0xE0 && b1 < 0xA0) || (b == 0xED && b1 >= 0xA0) || (b == 0xF0 && b1 < 0x90) || (b == 0xF4 && b1 >= 0x90) {
                    throw SourceError(file: file, line: line, column: column,
                                      message: "not UTF-8 text (invalid sequence at byte 0x\(String(b, radix: 16)))")
                }
            }
            if b == 0x0A { line += 1; column = 1 } else { column += 1 }
            i += length
        }
    }
}
