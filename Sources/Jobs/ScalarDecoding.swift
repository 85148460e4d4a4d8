import ControlProtocol

/// Typed reading of YAML scalars, shared by the job and config schemas. Numbers must be
/// plain (unquoted) decimal scalars; every failure is a `SourceError` naming the field.
struct ScalarDecoder {
    let file: String

    func error(_ field: String, _ mark: SourceMark, _ message: String) -> SourceError {
        SourceError(file: file, line: mark.line, column: mark.column, field: field, message: message)
    }

    /// YAML 1.1 spellings of null.
    static func isNull(_ text: String, plain: Bool) -> Bool {
        plain && (text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL")
    }

    /// The scalars of a YAML list whose `sequenceStart` was just read, up to its end
    /// (a grid axis's values, a `restart` segment).
    func scalarList(_ stream: YAMLEventStream, field: String) throws -> [(text: String, plain: Bool, mark: SourceMark)] {
        var items: [(text: String, plain: Bool, mark: SourceMark)] = []
        while true {
            let (item, itemMark) = try stream.next()
            if item == .sequenceEnd { return items }
            guard case .scalar(let text, let plain) = item else { throw error(field, itemMark, "expected single values") }
            items.append((text, plain, itemMark))
        }
    }

    func integer(_ text: String, plain: Bool, field: String, mark: SourceMark, range: ClosedRange<Int>) throws -> Int {
        let expected = "expected a whole number from \(range.lowerBound) to \(range.upperBound)"
        if ScalarDecoder.isNull(text, plain: plain) { throw error(field, mark, "has no value; \(expected)") }
        guard plain else { throw error(field, mark, "\(expected), got the quoted text \(SourceError.quote(text))") }
        var digits = Substring(text)
        if digits.first == "+" { digits = digits.dropFirst() }
        let negative = digits.first == "-"
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw error(field, mark, "\(expected), got \(SourceError.quote(text))")
        }
        guard let magnitude = Int(digits), let value = Optional(negative ? -magnitude : magnitude),
              range.contains(value) else {
            throw error(field, mark, "\(SourceError.quote(text, limit: 24)) is out of range; \(expected)")
        }
        return value
    }

    func unsigned64(_ text: String, plain: Bool, field: String, mark: SourceMark) throws -> UInt64 {
        let expected = "expected a whole number from 0 to \(UInt64.max)"
        if ScalarDecoder.isNull(text, plain: plain) { throw error(field, mark, "has no value; \(expected)") }
        guard plain else { throw error(field, mark, "\(expected), got the quoted text \(SourceError.quote(text))") }
        let digits = text.first == "+" ? Substring(text.dropFirst()) : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw error(field, mark, "\(expected), got \(SourceError.quote(text))")
        }
        guard let value = UInt64(digits) else {
            throw error(field, mark, "\(SourceError.quote(text, limit: 24)) is out of range; \(expected)")
        }
        return value
    }

    func number(_ text: String, plain: Bool, field: String, mark: SourceMark, range: ClosedRange<Double>) throws -> Double {
        let expected = "expected a number from \(range.lowerBound) to \(range.upperBound)"
        if ScalarDecoder.isNull(text, plain: plain) { throw error(field, mark, "has no value; \(expected)") }
        guard plain else { throw error(field, mark, "\(expected), got the quoted text \(SourceError.quote(text))") }
        let lowered = text.lowercased()
        if ["inf", "nan", "infinity"].contains(where: { lowered.hasSuffix($0) }) {
            throw error(field, mark, "must be a finite number, got \(SourceError.quote(text))")
        }
        guard text.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }), let value = Double(text) else {
            throw error(field, mark, "\(expected), got \(SourceError.quote(text))")
        }
        guard value.isFinite else { throw error(field, mark, "must be a finite number, got \(SourceError.quote(text))") }
        guard range.contains(value) else { throw error(field, mark, "\(text) is out of range; \(expected)") }
        return value
    }

    func string(_ text: String, plain: Bool, field: String, mark: SourceMark, maxBytes: Int) throws -> String {
        if ScalarDecoder.isNull(text, plain: plain) { throw error(field, mark, "has no value; write the text, or \"\" for none") }
        guard text.utf8.count <= maxBytes else {
            throw error(field, mark, "is \(text.utf8.count) bytes long, more than the limit of \(maxBytes)")
        }
        return text
    }

    /// A priority: a name (`low`, `normal`, `high`, `urgent`) or a plain whole number in
    /// ``JobPriority/range``, as job files and the config's `defaults:` both take it.
    func priority(_ text: String, plain: Bool, field: String, mark: SourceMark) throws -> Int {
        if let level = JobPriority.named(text) { return level.rawValue }
        guard plain, text.first.map({ $0.isNumber || $0 == "-" || $0 == "+" }) == true else {
            throw error(field, mark, "unknown value \(SourceError.quote(text)); valid: \(JobPriority.validValuesText)")
        }
        return try integer(text, plain: plain, field: field, mark: mark, range: JobPriority.range)
    }

    /// One of `names`; the error lists the valid ones.
    func choice<T>(_ text: String, plain: Bool, field: String, mark: SourceMark, parse: (String) -> T?, validNames: String) throws -> T {
        guard !ScalarDecoder.isNull(text, plain: plain), let value = parse(text) else {
            throw error(field, mark, "unknown value \(SourceError.quote(text)); valid: \(validNames)")
        }
        return value
    }
}
