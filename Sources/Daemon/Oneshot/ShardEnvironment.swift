import Foundation

/// `--shard auto`: which task this process is, from the scheduler's environment.
///
/// - Slurm job array: `SLURM_ARRAY_TASK_ID`. With `--shard-count N` the task ID is the shard
///   number itself (`--array=0-7` for 8 shards, and a resubmitted `--array=3,5` keeps its
///   numbers). Without it, the array is the batch: `N` = `SLURM_ARRAY_TASK_COUNT` and the
///   shard is `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` (so `--array=1-8` works too); that
///   needs the array to be one contiguous range, which a resubmission of some tasks is not.
/// - Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` with `--shard-count N` (the Job's
///   `completions`; Kubernetes does not tell a pod how many there are).
public enum ShardEnvironment {
    /// The shard `environment` names; `shardCount` is `--shard-count`, if given.
    public static func resolve(_ environment: [String: String], shardCount: Int?) throws -> Shard {
        func number(_ key: String) throws -> Int? {
            guard let text = environment[key], !text.isEmpty else { return nil }
            guard let value = Int(text), value >= 0 else { throw ShardError("\(key) is '\(text)', not a number") }
            return value
        }
        if let id = try number("SLURM_ARRAY_TASK_ID") {
            if let shardCount {
                guard id < shardCount else {
                    throw ShardError("SLURM_ARRAY_TASK_ID \(id) is outside 0…\(shardCount - 1) of --shard-count \(shardCount): number the array from 0 (--array=0-\(shardCount - 1))")
                }
                return try Shard(index: id, count: shardCount)
            }
            guard let count = try number("SLURM_ARRAY_TASK_COUNT"), count > 0 else {
                throw ShardError("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: give --shard-count N")
            }
            let min = try number("SLURM_ARRAY_TASK_MIN") ?? 0
            let max = try number("SLURM_ARRAY_TASK_MAX") ?? (min + count - 1)
            let step = try number("SLURM_ARRAY_TASK_STEP") ?? 1
            guard max - min + 1 == count, step == 1 else {
                throw ShardError("the array (\(min)…\(max), \(count) tasks) is not one range of consecutive IDs, so its size is not the number of shards: give --shard-count N and number the array 0…N-1")
            }
            return try Shard(index: id - min, count: count)
        }
        if let index = try number("JOB_COMPLETION_INDEX") {
            guard let shardCount else {
                throw ShardError("JOB_COMPLETION_INDEX is set: give --shard-count N, the Indexed Job's completions")
            }
            guard index < shardCount else {
                throw ShardError("JOB_COMPLETION_INDEX \(index) is outside 0…\(shardCount - 1) of --shard-count \(shardCount)")
            }
            return try Shard(index: index, count: shardCount)
        }
        throw ShardError("--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) is set; give --shard K/N")
    }

    /// The scheduler's name for this process's task, for the task record: `slurm JOB_TASK`
    /// (`SLURM_ARRAY_JOB_ID`_`SLURM_ARRAY_TASK_ID`, as `squeue` shows it), `slurm JOB`, or
    /// `pod NAME` for a Kubernetes Indexed Job's pod; `nil` outside a scheduler.
    public static func taskName(_ environment: [String: String]) -> String? {
        if let job = environment["SLURM_ARRAY_JOB_ID"], let task = environment["SLURM_ARRAY_TASK_ID"] { return "slurm \(job)_\(task)" }
        if let job = environment["SLURM_JOB_ID"] { return "slurm \(job)" }
        if environment["JOB_COMPLETION_INDEX"] != nil, let pod = environment["HOSTNAME"] { return "pod \(pod)" }
        return nil
    }
}
