import ControlProtocol
import Foundation
import Jobs

/// What one job folder of a `--oneshot` batch holds, read from disk: which images are
/// complete, the task records (``ShardRecord``) and `result.json`. The images on disk are
/// the truth about what is done; the records add who made them, when and how long it took.
struct JobFolderState {
    let job: JobRecord
    /// Per image index: `image-NNN.png` is complete (every image read; empty when not asked for).
    let complete: [Bool]
    let records: [ShardRecord]
    /// `shards/` files that are not records this version understands.
    let unreadableRecords: [String]
    /// `result.json`, when there is one; `resultUnreadable` when there is one that does not read.
    let result: JobResult?
    let resultUnreadable: Bool
    /// `image-*.png` names in the folder, whatever their number.
    let imageFiles: [String]

    /// Reads `job`'s folder; `readImages: false` skips reading the images (`complete` is
    /// empty), for the checks at start that need only the records.
    init(_ job: JobRecord, outbox: Outbox, readImages: Bool = true) {
        self.job = job
        imageFiles = ((try? FileManager.default.contentsOfDirectory(atPath: outbox.folder(job).path)) ?? [])
            .filter { $0.hasPrefix("image-") && $0.hasSuffix(".png") }.sorted()
        complete = readImages ? (0..<job.spec.imageCount).map { outbox.hasCompleteImage(job, $0) } : []
        (records, unreadableRecords) = outbox.shardRecords(job)
        result = outbox.result(job)
        resultUnreadable = result == nil && FileManager.default.fileExists(atPath: outbox.resultURL(job).path)
    }

    /// Image indices without a complete file.
    var missing: [Int] { complete.indices.filter { !complete[$0] } }

    /// The record of task `shard`, if it has one.
    func record(_ shard: Shard) -> ShardRecord? {
        records.first { $0.shard == shard.index && $0.shards == shard.count }
    }

    /// Why this folder cannot take `job`'s images, or `nil` when it is empty or holds earlier
    /// work on the same job (same ``JobParameters``). A folder is never cleared: a different
    /// job there is the user's to move away.
    func conflict(with parameters: JobParameters) -> String? {
        let folder = job.folder
        if resultUnreadable { return "\(folder)/result.json does not read as a diffusiond result" }
        if let first = unreadableRecords.first { return "\(first) does not read as a diffusiond task record" }
        if let result, result.parameters != parameters {
            return "\(folder)/result.json records another job (\(JobFolderState.differences(result.parameters, parameters)) differ)"
        }
        if let other = records.first(where: { $0.parameters != parameters }) {
            return "\(folder)/shards/\(other.shard)-of-\(other.shards).json records another job (\(JobFolderState.differences(other.parameters, parameters)) differ)"
        }
        if result == nil, records.isEmpty, let image = imageFiles.first {
            return "\(folder)/\(image) is there, but no result.json or shards/ record says which job made it"
        }
        return nil
    }

    /// The names of the parameters that differ between `a` and `b`, as the job file writes them.
    static func differences(_ a: JobParameters, _ b: JobParameters) -> String {
        func object(_ p: JobParameters) -> [String: NSObject] {
            guard let data = try? JSONEncoder().encode(p),
                  let any = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
            return any.compactMapValues { $0 as? NSObject }
        }
        let (x, y) = (object(a), object(b))
        let keys = Set(x.keys).union(y.keys).filter { x[$0] != y[$0] }.sorted()
        return keys.isEmpty ? "parameters" : keys.joined(separator: ", ")
    }
}
