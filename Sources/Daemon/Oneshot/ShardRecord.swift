import ControlProtocol
import Foundation
import Jobs
#if canImport(Glibc)
import Glibc
#endif

/// What one `--oneshot` task did in one job folder: `<folder>/shards/K-of-N.json`.
///
/// The task writes it (atomically, like every outbox file) when it starts its share of the
/// job, after every image, and when it stops; a rerun of the same task carries the earlier
/// attempt's images over and counts the attempt. The merged `result.json` is built from these
/// records and the images on disk (``ShardMerge``); `--status` reads them to say which tasks
/// are done, failed or unfinished. Each task writes only its own record, so tasks on several
/// hosts never write the same file (no locks needed, also on NFS).
public struct ShardRecord: Codable, Equatable, Sendable {
    /// `running` (started, not yet stopped: still running, or killed), `done`, `failed`,
    /// `interrupted` (stopped by SIGTERM: `scancel`, preemption).
    public enum Status: String, Codable, Sendable { case running, done, failed, interrupted }

    /// `K` of `K/N`.
    public var shard: Int
    /// `N` of `K/N`.
    public var shards: Int
    public var status: Status
    /// What makes the job's images; a task whose job differs refuses the folder.
    public var parameters: JobParameters
    /// The images of this task's share that are complete: made by it (with their time) or
    /// found complete from an earlier attempt.
    public var images: [JobResult.Image]
    /// Images of this task's share (1-based file numbers are `image-NNN.png`).
    public var assigned: Int
    /// Where the last attempt ran: `AtomicFile.hostName` and process id.
    public var host: String
    public var pid: Int32
    /// Slurm's or Kubernetes' name for the task, when it ran under one (`1234_5`).
    public var schedulerTask: String?
    /// When the first attempt started.
    public var started: String
    /// When the last attempt started.
    public var attemptStarted: String
    public var finished: String?
    /// Wall time of all attempts, model loading included.
    public var seconds: Double
    /// How many times this task started on this job.
    public var attempts: Int
    public var error: String?
    public var warnings: [String]?
    /// The loaded model's `weights` mode (`JobResult.weights`); nil until a model was loaded.
    public var weights: String?

    /// Keys as the outbox's other files write them (snake case).
    private enum CodingKeys: String, CodingKey {
        case shard, shards, status, parameters, images, assigned, host, pid, started, finished, seconds, attempts, error, warnings, weights
        case schedulerTask = "scheduler_task", attemptStarted = "attempt_started"
    }

    /// `shard`/`shards` as a ``Shard``; `nil` when the file holds numbers that name none.
    public var shardValue: Shard? { try? Shard(index: shard, count: shards) }
}

extension Outbox {
    /// `<folder>/shards/`: the task records of `--oneshot` runs.
    public func shardFolder(_ job: JobRecord) -> URL { folder(job).appendingPathComponent("shards") }

    public func shardRecordURL(_ job: JobRecord, _ shard: Shard) -> URL {
        shardFolder(job).appendingPathComponent(shard.recordName + ".json")
    }

    /// Writes `record` as `shards/K-of-N.json` (temp, fsync, rename).
    public func writeShardRecord(_ record: ShardRecord, for job: JobRecord) throws {
        guard let shard = record.shardValue else { throw RunError("shard record \(record.shard)/\(record.shards) is not a shard") }
        try AtomicFile.makeDirectory(shardFolder(job))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(Array(try encoder.encode(record)) + [0x0A], to: shardRecordURL(job, shard))
    }

    /// Every task record in `job`'s folder that reads, by file name; unreadable ones are
    /// listed apart so a caller can say so rather than trust a half-understood folder.
    public func shardRecords(_ job: JobRecord) -> (records: [ShardRecord], unreadable: [String]) {
        let dir = shardFolder(job)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted()
        var records: [ShardRecord] = [], unreadable: [String] = []
        for name in names {
            if let data = FileManager.default.contents(atPath: dir.appendingPathComponent(name).path),
               let record = try? JSONDecoder().decode(ShardRecord.self, from: data),
               record.shardValue.map({ $0.recordName + ".json" == name }) == true {
                records.append(record)
            } else {
                unreadable.append("\(job.folder)/shards/\(name)")
            }
        }
        return (records, unreadable)
    }

    /// Removes the temporary files of writers that are gone (``AtomicFile/isAbandoned(_:in:)``)
    /// from `job`'s folder, `steps/` and `shards/`; a live task's files are left alone.
    public func removeAbandonedTemporaryFiles(_ job: JobRecord) {
        for dir in [folder(job), folder(job).appendingPathComponent("steps"), shardFolder(job)] {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { continue }
            for name in names where AtomicFile.isAbandoned(name, in: dir) {
                unlink(dir.appendingPathComponent(name).path)
            }
        }
    }
}
