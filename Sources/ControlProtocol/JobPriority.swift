/// A job's priority: a whole number from 0 (lowest) to 100 (highest), higher runs first; four
/// levels have names. The one definition of the names, the range and how priorities are read
/// and reported wrong, used by the job-file parser, the config, the control protocol, the
/// daemon's queue and `diffusionctl`.
///
/// Priorities are stored and sent as plain numbers (job files, the queue journal, the `priority`
/// field on the wire): this type validates them, it does not change their encoding.
public struct JobPriority: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The number, always within ``range``.
    public let rawValue: Int

    /// `nil` when `rawValue` is outside ``range``.
    public init?(rawValue: Int) {
        guard JobPriority.range.contains(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    /// Every valid priority: 0…100.
    public static let range: ClosedRange<Int> = 0...100

    // Only for the named constants below, whose values are within the range.
    private init(level: Int) { rawValue = level }

    /// 25.
    public static let low = JobPriority(level: 25)
    /// 50, what a job gets unless its file or the config's `defaults` say otherwise.
    public static let normal = JobPriority(level: 50)
    /// 75.
    public static let high = JobPriority(level: 75)
    /// 100, the highest.
    public static let urgent = JobPriority(level: 100)

    /// The named levels in rising order, as written in job files and on the command line.
    public static let levels: [(name: String, priority: JobPriority)] =
        [("low", .low), ("normal", .normal), ("high", .high), ("urgent", .urgent)]

    /// The level called exactly `name` (lower case, as in job files), if any.
    public static func named(_ name: String) -> JobPriority? {
        levels.first { $0.name == name }?.priority
    }

    /// The level's name when the number has one (`75` → `high`).
    public var name: String? { JobPriority.levels.first { $0.priority == self }?.name }

    /// Reads a command-line level: a name in any case (`high`, `HIGH`) or a number within
    /// ``range`` (an optional sign, decimal digits). `nil` for anything else.
    public init?(parsing text: String) {
        if let named = JobPriority.named(text.lowercased()) {
            self = named
        } else if let number = Int(text), let valid = JobPriority(rawValue: number) {
            self = valid
        } else {
            return nil
        }
    }

    /// `0-100 or low|normal|high|urgent`: what a level may be, for usage texts.
    public static var usageText: String {
        "\(range.lowerBound)-\(range.upperBound) or " + levels.map(\.name).joined(separator: "|")
    }

    /// `low, normal, high, urgent, or 0 to 100`: the valid values, for job-file errors.
    public static var validValuesText: String {
        levels.map(\.name).joined(separator: ", ") + ", or \(range.lowerBound) to \(range.upperBound)"
    }

    /// `0–100`: the range, for protocol errors.
    public static var rangeText: String { "\(range.lowerBound)–\(range.upperBound)" }

    /// Error text for a command-line level that ``init(parsing:)`` refused.
    public static func invalidLevelMessage(_ text: String) -> String {
        "priority level must be \(usageText), got '\(text)'"
    }

    /// Error text for a number outside ``range`` (a request on the wire, a queue change).
    public static func outOfRangeMessage(_ value: Int) -> String {
        "priority must be \(rangeText), got \(value)"
    }

    /// Error text for a `priority` request that carries no level.
    public static let missingLevelMessage = "priority needs a level (\(rangeText))"

    public static func < (a: JobPriority, b: JobPriority) -> Bool { a.rawValue < b.rawValue }

    /// The number (`75`).
    public var description: String { String(rawValue) }
}
