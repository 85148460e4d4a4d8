import ControlProtocol
import Foundation

/// Prompt templates (`man 5 diffusion-job`, BATCH FORMS): `{red|green|blue}` picks one
/// alternative, `__name__` one line of `<wildcards_dir>/name.txt`; alternatives may nest and
/// wildcard lines may hold templates themselves (at most ``maximumDepth`` levels).
///
/// Choices are drawn left to right from a SplitMix64 stream seeded by the job's seed, each
/// `next() % options`, so the same seed always gives the same prompt (a rerun, a retry, a
/// resubmitted file) and another seed very likely another one. A `{…}` without `|` and a
/// `__` not closed by a valid name are ordinary text.
public enum PromptTemplate {
    /// Wildcards within wildcards nest at most this deep (a cycle is an error, not a hang).
    public static let maximumDepth = 8
    /// `{…}` within `{…}` nest at most this deep (the parser recurses once per level).
    public static let maximumBraceDepth = 32

    /// Whether `text` has anything to expand.
    public static func hasTemplates(_ text: String) -> Bool {
        !wildcardNames(text).isEmpty || (try? parse(Array(text.unicodeScalars))).map { $0.hasChoice } == true
    }

    /// The `__name__` wildcards `text` names, in order (repeats kept).
    public static func wildcardNames(_ text: String) -> [String] {
        guard let nodes = try? parse(Array(text.unicodeScalars)) else { return [] }
        return nodes.wildcards
    }

    /// `text` with every template expanded, drawing from `stream`.
    public static func expand(_ text: String, stream: inout SplitMix64, wildcards: WildcardLibrary?) throws -> String {
        try expand(text, stream: &stream, wildcards: wildcards, depth: 0)
    }

    private static func expand(_ text: String, stream: inout SplitMix64, wildcards: WildcardLibrary?, depth: Int) throws -> String {
        guard depth <= maximumDepth else {
            throw TemplateError("wildcards nest more than \(maximumDepth) deep (does one name itself?)")
        }
        let nodes = try parse(Array(text.unicodeScalars))
        var out = ""
        try render(nodes.items, into: &out, stream: &stream, wildcards: wildcards, depth: depth)
        return out
    }

    private static func render(_ items: [Node], into out: inout String, stream: inout SplitMix64,
                               wildcards: WildcardLibrary?, depth: Int) throws {
        for item in items {
            switch item {
            case .text(let text):
                out += text
            case .choice(let options):
                let pick = Int(stream.next() % UInt64(options.count))
                try render(options[pick], into: &out, stream: &stream, wildcards: wildcards, depth: depth)
            case .wildcard(let name):
                guard let wildcards else { throw TemplateError("__\(name)__: no wildcards_dir is configured") }
                let options = try wildcards.options(name)
                let line = options[Int(stream.next() % UInt64(options.count))]
                out += try expand(line, stream: &stream, wildcards: wildcards, depth: depth + 1)
            }
        }
    }

    // MARK: parsing

    indirect enum Node {
        case text(String)
        case choice([[Node]])
        case wildcard(String)
    }

    struct Parsed {
        var items: [Node]
        var hasChoice: Bool { items.contains { if case .choice = $0 { return true } else { return false } } }
        var wildcards: [String] {
            func names(_ items: [Node]) -> [String] {
                items.flatMap { node -> [String] in
                    switch node {
                    case .text: return []
                    case .wildcard(let name): return [name]
                    case .choice(let options): return options.flatMap(names)
                    }
                }
            }
            return names(items)
        }
    }

    static func parse(_ scalars: [Unicode.Scalar]) throws -> Parsed {
        var index = 0
        let parser = Parser(scalars)
        let items = try parser.sequence(&index, nested: false)
        return Parsed(items: items)
    }

    /// One parse of a template. Whether `{` at a position opens alternatives depends only on
    /// the text after it, so each answer is kept: without that, unclosed `{` nested in
    /// unclosed `{` were read again for every enclosing one, 2ⁿ times for n of them (an
    /// 80-byte prompt held the intake for minutes; found by `make fuzz`, target job-file).
    private final class Parser {
        let s: [Unicode.Scalar]
        private var known: [Int: Alternatives] = [:]
        private var depth = 0
        private enum Alternatives { case text, options([[Node]], end: Int) }

        init(_ scalars: [Unicode.Scalar]) { s = scalars }

        func alternatives(from start: Int) throws -> ([[Node]], Int)? {
            let answer: Alternatives
            if let seen = known[start] {
                answer = seen
            } else {
                depth += 1
                defer { depth -= 1 }
                guard depth <= PromptTemplate.maximumBraceDepth else {
                    throw TemplateError("'{' nests more than \(PromptTemplate.maximumBraceDepth) deep")
                }
                answer = try PromptTemplate.alternatives(self, from: start).map { .options($0.0, end: $0.1) } ?? .text
                known[start] = answer
            }
            if case .options(let options, let end) = answer { return (options, end) }
            return nil
        }

        func sequence(_ i: inout Int, nested: Bool) throws -> [Node] { try PromptTemplate.sequence(self, &i, nested: nested) }
    }

    /// Reads nodes until the end, or (nested) until an unmatched `|` or `}` (left unconsumed).
    private static func sequence(_ parser: Parser, _ i: inout Int, nested: Bool) throws -> [Node] {
        let s = parser.s
        var items: [Node] = []
        var text = ""
        func flush() { if !text.isEmpty { items.append(.text(text)); text = "" } }
        while i < s.count {
            let c = s[i]
            if nested && (c == "|" || c == "}") { break }
            if c == "{", let (options, end) = try parser.alternatives(from: i) {
                flush()
                items.append(.choice(options))
                i = end
                continue
            }
            if c == "_", i + 1 < s.count, s[i + 1] == "_", let (name, end) = wildcard(s, from: i) {
                flush()
                items.append(.wildcard(name))
                i = end
                continue
            }
            text.unicodeScalars.append(c)
            i += 1
        }
        flush()
        return items
    }

    /// `{a|b|…}` starting at `start`: its options and the index after `}`; nil when the
    /// braces do not close or hold no `|` (then they are text).
    private static func alternatives(_ parser: Parser, from start: Int) throws -> ([[Node]], Int)? {
        let s = parser.s
        var i = start + 1
        var options: [[Node]] = []
        while true {
            options.append(try parser.sequence(&i, nested: true))
            guard i < s.count else { return nil }
            if s[i] == "}" { break }
            i += 1  // past "|"
        }
        guard options.count >= 2 else { return nil }
        return (options, i + 1)
    }

    /// `__name__` starting at `start`, name `[A-Za-z0-9_-]` not starting or ending with `_`.
    private static func wildcard(_ s: [Unicode.Scalar], from start: Int) -> (String, Int)? {
        var i = start + 2
        var name = ""
        while i < s.count {
            let c = s[i]
            if c == "_", i + 1 < s.count, s[i + 1] == "_", !name.isEmpty, name.last != "_" { return (name, i + 2) }
            guard c.isASCII, c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-" else { return nil }
            if name.isEmpty && c == "_" { return nil }
            name.unicodeScalars.append(c)
            i += 1
        }
        return nil
    }
}

/// A template that cannot be expanded (an unknown wildcard, nesting too deep).
public struct TemplateError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// SplitMix64 (Steele, Lea, Flood 2014; `java.util.SplittableRandom`): a tiny generator whose
/// stream is fixed by its seed on every platform and Swift version.
public struct SplitMix64: Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The wildcard files of the config's `wildcards_dir`: `<name>.txt`, one option per line,
/// blank lines and lines starting with `#` skipped. A folder the administrator configures,
/// read by the daemon as itself; names never hold a path.
public struct WildcardLibrary: Sendable {
    public let directory: URL

    public init(directory: URL) { self.directory = directory }

    /// Largest wildcard file read, bytes.
    public static let maximumFileBytes = 4 << 20

    /// The options of wildcard `name`; throws when there is no such file or it has none.
    public func options(_ name: String) throws -> [String] {
        let url = directory.appendingPathComponent(name + ".txt")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw TemplateError("__\(name)__: no wildcard file \(name).txt in wildcards_dir \(directory.path)")
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
        if let size = attributes?[.size] as? Int, size > Self.maximumFileBytes {
            throw TemplateError("__\(name)__: \(url.path) is over \(Self.maximumFileBytes) bytes")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TemplateError("__\(name)__: cannot read \(url.path)")
        }
        let lines = PromptLines.lines(String(decoding: data, as: UTF8.self))
        for line in lines {
            if let (position, scalar) = PrintableText.firstControl(in: line.text) {
                throw TemplateError("__\(name)__: \(url.path) line \(line.line): control character "
                                    + "\(PrintableText.describe(scalar)) at character \(position)")
            }
        }
        let options = lines.map(\.text)
        guard !options.isEmpty else { throw TemplateError("__\(name)__: \(url.path) has no options (only blank or # lines)") }
        return options
    }
}

/// Line files (`prompts_file`, wildcard files): one entry per line, surrounding spaces
/// trimmed, blank lines and lines whose first non-blank character is `#` skipped.
public enum PromptLines {
    /// The entries with their 1-based line numbers.
    public static func lines(_ text: String) -> [(line: Int, text: String)] {
        var out: [(Int, String)] = []
        for (k, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            out.append((k + 1, trimmed))
        }
        return out
    }
}
