/// Lengths of the names the daemon makes from a user's file name, so that every suffix it
/// adds (`N~` claims, `.N` for a taken name in `rejected/`, `.error`, AtomicFile's
/// `.tmp-HOST-PID-N`) stays within NAME_MAX (255 bytes) for any name a file system allows.
public enum FileNames {
    /// Longest user part of a claim name (`state/claimed/N~name`).
    public static let claimBytes = 200
    /// Longest user part of a name in `outbox/rejected/` (before `.N` and `.error`).
    public static let rejectedBytes = 200
    /// Longest final name an AtomicFile temporary carries (`.name.tmp-HOST-PID-N`, HOST at
    /// most 24 bytes).
    public static let temporaryBytes = 200

    /// `name` cut at a character boundary to at most `limit` bytes of UTF-8.
    public static func shortened(_ name: String, toBytes limit: Int) -> String {
        guard name.utf8.count > limit else { return name }
        var short = Substring(name)
        while short.utf8.count > limit { short.removeLast() }
        return String(short)
    }
}
