import Foundation

/// One task's share of a `--oneshot` batch: task `index` of `count`, counted from 0 (Slurm
/// array task IDs `0…N-1`, a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`).
///
/// The batch's images are numbered in command-line order (file by file, document by
/// document, image by image: its *position*), and position `p` belongs to task `p mod N`.
/// Round robin over images rather than blocks of files: a 300-image `count` splits too, each
/// task gets a slice of every job (so a costly job does not land on one task alone), and task
/// sizes differ by at most one image. The split depends only on the job files, their order
/// and `N`, so a rerun or a resubmitted task gets exactly the images it had.
public struct Shard: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// The whole batch in one task (no `--shard`).
    public static let whole = Shard(uncheckedIndex: 0, count: 1)
    /// The largest `N` accepted (Slurm's own `MaxArraySize` ceiling is 4,000,001).
    public static let maxCount = 4_000_000

    private init(uncheckedIndex index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// Task `index` of `count`; throws unless `0 ≤ index < count ≤ maxCount`.
    public init(index: Int, count: Int) throws {
        guard count >= 1, count <= Shard.maxCount else {
            throw ShardError("the number of tasks must be 1…\(Shard.maxCount), not \(count)")
        }
        guard index >= 0, index < count else {
            throw ShardError("task \(index) is outside 0…\(count - 1): tasks of \(count) count from 0 (0/\(count) … \(count - 1)/\(count))")
        }
        self.init(uncheckedIndex: index, count: count)
    }

    /// Parses `K/N` (`--shard 2/8`).
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]) else {
            throw ShardError("--shard needs K/N (task K of N, K from 0) or auto, not '\(text)'")
        }
        try self.init(index: k, count: n)
    }

    /// `K/N`.
    public var description: String { "\(index)/\(count)" }

    /// The file name stem of this task's record in a job folder (`shards/2-of-8.json`).
    public var recordName: String { "\(index)-of-\(count)" }

    /// The task that makes the image at `position` in the batch.
    public static func owner(ofPosition position: Int, count: Int) -> Int { position % count }

    /// For each job (its image count, in batch order), the image indices (0-based, ascending)
    /// that belong to this task.
    public func images(jobCounts: [Int]) -> [[Int]] {
        var position = 0
        return jobCounts.map { n in
            defer { position += n }
            // First index i ≥ 0 with (position + i) mod count == index, then every count-th.
            let first = ((index - position) % count + count) % count
            return Array(stride(from: first, to: n, by: count))
        }
    }

    /// The tasks (of this task's `count`) that own at least one image of job `job`.
    public static func owners(job: Int, jobCounts: [Int], count: Int) -> [Int] {
        let position = jobCounts.prefix(job).reduce(0, +)
        let n = jobCounts[job]
        return (0..<min(n, count)).map { owner(ofPosition: position + $0, count: count) }.sorted()
    }
}

/// A `--shard` value or environment that does not name one task.
public struct ShardError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
