import XCTest
@testable import Daemon

/// `Shard`: which images of a batch each task of a `--oneshot --shard` run makes, and
/// `--shard auto`'s reading of Slurm's and Kubernetes' environment.
final class ShardSplitTests: XCTestCase {
    /// SplitMix64 (Steele et al. 2014), so the random batches are the same on every run.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Batches of every shape: one job, a 300-image `count`, more tasks than images, many
    /// small jobs, random mixes.
    func batches() -> [[Int]] {
        var rng = SplitMix(state: 19)
        var batches: [[Int]] = [[1], [300], [3, 5], [10, 10], [1, 1, 1], [64], [65, 1, 63], Array(repeating: 1, count: 70)]
        for _ in 0..<20 {
            batches.append((0..<Int.random(in: 1...12, using: &rng)).map { _ in Int.random(in: 1...40, using: &rng) })
        }
        return batches
    }

    func testEveryImageBelongsToExactlyOneTaskForEveryTaskCountFrom1To64() throws {
        for counts in batches() {
            let total = counts.reduce(0, +)
            for n in 1...64 {
                var seen = counts.map { [Int](repeating: 0, count: $0) }
                var sizes: [Int] = []
                for k in 0..<n {
                    let share = try Shard(index: k, count: n).images(jobCounts: counts)
                    XCTAssertEqual(share.count, counts.count)
                    for (j, indices) in share.enumerated() {
                        XCTAssertEqual(indices, indices.sorted(), "ascending")
                        for i in indices { seen[j][i] += 1 }
                    }
                    sizes.append(share.map(\.count).reduce(0, +))
                }
                XCTAssertEqual(seen.flatMap { $0 }, [Int](repeating: 1, count: total), "N=\(n) counts=\(counts): each image exactly once")
                XCTAssertLessThanOrEqual((sizes.max() ?? 0) - (sizes.min() ?? 0), 1, "N=\(n) counts=\(counts): sizes \(sizes)")
                XCTAssertEqual(sizes.reduce(0, +), total)
            }
        }
    }

    /// The split is a function of the counts and N alone: the same on every call and in every
    /// process (image at batch position p → task p mod N), checked against a worked example.
    func testTheSplitIsStableAndRoundRobinOverBatchPositions() throws {
        // Positions 0 1 2 | 3 4 5 6 7 for jobs of 3 and 5 images, 3 tasks.
        XCTAssertEqual(try Shard(index: 0, count: 3).images(jobCounts: [3, 5]), [[0], [0, 3]])
        XCTAssertEqual(try Shard(index: 1, count: 3).images(jobCounts: [3, 5]), [[1], [1, 4]])
        XCTAssertEqual(try Shard(index: 2, count: 3).images(jobCounts: [3, 5]), [[2], [2]])
        // A 300-image count splits too: task 7 of 64 takes images 8, 72, 136, 200, 264 (1-based).
        XCTAssertEqual(try Shard(index: 7, count: 64).images(jobCounts: [300]), [[7, 71, 135, 199, 263]])
        XCTAssertEqual(try Shard(index: 5, count: 8).images(jobCounts: [2, 2]), [[], []], "more tasks than images")
        for counts in batches() {
            for n in [1, 2, 7, 64] {
                for k in 0..<n {
                    let shard = try Shard(index: k, count: n)
                    let share = shard.images(jobCounts: counts)
                    XCTAssertEqual(share, shard.images(jobCounts: counts))
                    var position = 0
                    for (j, c) in counts.enumerated() {
                        XCTAssertEqual(share[j], (0..<c).filter { (position + $0) % n == k })
                        XCTAssertEqual(Shard.owners(job: j, jobCounts: counts, count: n),
                                       Set((0..<c).map { (position + $0) % n }).sorted())
                        position += c
                    }
                }
            }
        }
    }

    func testParsingKOfN() throws {
        XCTAssertEqual(try Shard(parsing: "2/8"), try Shard(index: 2, count: 8))
        XCTAssertEqual(try Shard(parsing: "0/1"), Shard.whole)
        XCTAssertEqual(try Shard(parsing: "2/8").recordName, "2-of-8")
        XCTAssertThrowsError(try Shard(parsing: "8/8")) {
            XCTAssertEqual("\($0)", "task 8 is outside 0…7: tasks of 8 count from 0 (0/8 … 7/8)")
        }
        XCTAssertThrowsError(try Shard(parsing: "1/0")) {
            XCTAssertEqual("\($0)", "the number of tasks must be 1…4000000, not 0")
        }
        for bad in ["", "3", "a/4", "1/4/2", "-1/4", "1 / 4"] {
            XCTAssertThrowsError(try Shard(parsing: bad), bad)
        }
    }

    func testAutoReadsASlurmArray() throws {
        let array = ["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3"]
        XCTAssertEqual(try ShardEnvironment.resolve(array, shardCount: nil), try Shard(index: 3, count: 4))
        // --array=1-8: IDs are offset by SLURM_ARRAY_TASK_MIN.
        let fromOne = ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "8", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "8"]
        XCTAssertEqual(try ShardEnvironment.resolve(fromOne, shardCount: nil), try Shard(index: 0, count: 8))
        // A resubmitted --array=2,5 is no range: its size is not the number of shards.
        let resubmitted = ["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_MAX": "5"]
        XCTAssertThrowsError(try ShardEnvironment.resolve(resubmitted, shardCount: nil)) {
            XCTAssertTrue("\($0)".contains("give --shard-count N"), "\($0)")
        }
        // With --shard-count the task ID is the shard number.
        XCTAssertEqual(try ShardEnvironment.resolve(resubmitted, shardCount: 8), try Shard(index: 5, count: 8))
        XCTAssertThrowsError(try ShardEnvironment.resolve(resubmitted, shardCount: 4)) {
            XCTAssertEqual("\($0)", "SLURM_ARRAY_TASK_ID 5 is outside 0…3 of --shard-count 4: number the array from 0 (--array=0-3)")
        }
        XCTAssertThrowsError(try ShardEnvironment.resolve(["SLURM_ARRAY_TASK_ID": "x"], shardCount: 4)) {
            XCTAssertEqual("\($0)", "SLURM_ARRAY_TASK_ID is 'x', not a number")
        }
        XCTAssertEqual(ShardEnvironment.taskName(["SLURM_ARRAY_JOB_ID": "41", "SLURM_ARRAY_TASK_ID": "3", "SLURM_JOB_ID": "44"]), "slurm 41_3")
    }

    func testAutoReadsAKubernetesIndexedJob() throws {
        XCTAssertEqual(try ShardEnvironment.resolve(["JOB_COMPLETION_INDEX": "2"], shardCount: 5), try Shard(index: 2, count: 5))
        XCTAssertThrowsError(try ShardEnvironment.resolve(["JOB_COMPLETION_INDEX": "2"], shardCount: nil)) {
            XCTAssertEqual("\($0)", "JOB_COMPLETION_INDEX is set: give --shard-count N, the Indexed Job's completions")
        }
        XCTAssertThrowsError(try ShardEnvironment.resolve(["JOB_COMPLETION_INDEX": "5"], shardCount: 5))
        XCTAssertEqual(ShardEnvironment.taskName(["JOB_COMPLETION_INDEX": "2", "HOSTNAME": "render-2-x7"]), "pod render-2-x7")
        XCTAssertThrowsError(try ShardEnvironment.resolve([:], shardCount: 4)) {
            XCTAssertTrue("\($0)".hasPrefix("--shard auto: neither SLURM_ARRAY_TASK_ID"), "\($0)")
        }
    }
}
