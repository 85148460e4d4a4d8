/// A problem in a YAML input (job file or config), pinned to a place in that file.
/// `description` is always one line: `FILE:LINE:COLUMN: field 'F': MESSAGE`.
public struct SourceError: Error, Equatable, CustomStringConvertible, Sendable {
    /// File name as given by the caller (the inbox name, or the path on the command line).
    public var file: String
    /// 1-based line; 0 when the problem concerns the whole file.
    public var line: Int
    /// 1-based column; 0 when the problem concerns the whole file.
    public var column: Int
    /// The field concerned, if any (`steps`, `limits.max_width`, …).
    public var field: String?
    /// What is wrong, and when useful what would be right.
    public var message: String

    public init(file: String, line: Int, column: Int, field: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    public var description: String {
        let fieldPart = field.map { "field '\($0)': " } ?? ""
        return SourceError.oneLine("\(file):\(line):\(column): \(fieldPart)\(message)")
    }

    /// Replaces control characters so a message can never span lines.
    public static func oneLine(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : $0 }))
    }

    /// A short, quoted, single-line rendering of user text for error messages.
    static func quote(_ text: String, limit: Int = 40) -> String {
        let cut = text.count > limit ? String(text.prefix(limit)) + "…" : text
        return "\"" + oneLine(cut) + "\""
    }
}

/// 1-based position in a YAML source.
public struct SourceMark: Equatable, Sendable {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}
