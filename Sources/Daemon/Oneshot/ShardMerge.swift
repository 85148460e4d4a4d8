import ControlProtocol
import Foundation
import Jobs

/// The merged view of a job folder that several `--oneshot --shard` tasks (or several runs of
/// one) wrote into: one `result.json` covering every image, built from the images on disk
/// and the task records. Any task may write it, and every task tries once it is done with a
/// job; tasks that see the same folder build the same file, so it does not matter which one
/// writes last.
enum ShardMerge {
    /// The `result.json` that `state` calls for, or `nil` while the job is not finished:
    /// - every image complete: `done`;
    /// - else, when each task of `shards` that owns images of the job (`owners`) has stopped
    ///   for good (`done` or `failed`, not `running` or `interrupted`) and one failed:
    ///   `failed`, with what each failed task reported and which images are missing.
    static func merged(_ state: JobFolderState, owners: [Int], shards: Int) -> JobResult? {
        let job = state.job
        let missing = state.missing
        var status = JobState.done
        var error: String?
        if !missing.isEmpty {
            let own = owners.map { k in state.records.first { $0.shard == k && $0.shards == shards } }
            guard own.allSatisfy({ $0?.status == .done || $0?.status == .failed }) else { return nil }
            let failures = own.compactMap { $0 }.filter { $0.status == .failed }
            guard !failures.isEmpty else { return nil }
            status = .failed
            let files = missing.prefix(5).map { String(format: "image-%03d.png", $0 + 1) }.joined(separator: ", ")
            error = failures.map { record in
                let reason = record.error ?? "no reason recorded"
                return shards == 1 ? reason : "task \(record.shard)/\(record.shards) failed: \(reason)"
            }.joined(separator: "; ")
                + "; \(missing.count) of \(job.spec.imageCount) images missing (\(files)\(missing.count > 5 ? ", …" : ""))"
        }
        // Timings: the task that made an image recorded how long it took; an image found
        // complete by a later attempt has no time (nil) unless another record has one.
        var seconds: [String: Double] = [:]
        for record in state.records {
            for image in record.images { if let s = image.seconds, seconds[image.file] == nil { seconds[image.file] = s } }
        }
        let images: [JobResult.Image] = state.complete.indices.filter { state.complete[$0] }.map { index in
            let file = String(format: "image-%03d.png", index + 1)
            return .init(file: file, seed: job.spec.request(image: index).seed, seconds: seconds[file])
        }
        let records = state.records.filter { $0.parameters == job.spec.parameters(model: job.model) }
        let started = records.map(\.started).min()
        let finished = records.compactMap(\.finished).max() ?? started ?? Outbox.iso(Date().timeIntervalSince1970)
        var result = JobResult(id: job.id, name: job.spec.name, status: status.rawValue, source: job.sourceFile,
                               document: job.spec.documentIndex, owner: job.owner,
                               parameters: job.spec.parameters(model: job.model), images: images,
                               submitted: started ?? finished, started: started, finished: finished,
                               seconds: records.isEmpty ? nil : records.map(\.seconds).reduce(0, +),
                               attempts: records.map(\.attempts).reduce(0, +), error: error,
                               warnings: records.compactMap(\.warnings).first)
        result.shards = shards
        result.weights = records.compactMap(\.weights).first
        return result
    }

    /// Writes `merged` as `job`'s `result.json` unless the file already says the same, or
    /// says as much: a complete result with every time known is not replaced by one that
    /// read an older record, unless that record names another weights mode or other warnings
    /// (an image remade after the model entry's `weights:` changed).
    /// Returns whether it wrote.
    @discardableResult
    static func write(_ merged: JobResult, for job: JobRecord, in outbox: Outbox, existing: JobResult?) throws -> Bool {
        if let existing {
            if existing == merged { return false }
            let known = { (r: JobResult) in r.images.filter { $0.seconds != nil }.count }
            if existing.status == JobState.done.rawValue, existing.images.count == merged.images.count,
               merged.status == JobState.done.rawValue, known(existing) >= known(merged),
               existing.weights == merged.weights, existing.warnings == merged.warnings { return false }
        }
        try outbox.write(merged, for: job)
        return true
    }
}
