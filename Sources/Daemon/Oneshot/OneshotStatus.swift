import ControlProtocol
import Foundation
import Jobs

/// `diffusiond --oneshot --status DIR JOB.yaml… [--shard-count N]`: what a (sharded) batch
/// has made in outbox `DIR` so far, job by job and task by task, read from the images, task
/// records and `result.json` files; changes nothing. The last line lists the tasks to
/// resubmit (`--array=` takes it as it is). Exit 0 when every image and every `result.json`
/// is there, 75 when something is missing or failed, 73 when a folder holds another job.
struct OneshotStatus {
    let intake: OneshotIntake
    let outbox: URL
    /// `--shard-count`; else the `N` of the task records found, else 1.
    let shardCount: Int?
    /// Where the report goes (standard output).
    var print: (String) -> Void = { Swift.print($0) }

    /// One task's standing over all jobs.
    struct TaskState: Equatable {
        enum Kind: String { case done, failed, unfinished = "started, not finished", interrupted, notStarted = "not started" }
        var kind: Kind
        var complete: Int
        var assigned: Int
        /// The last attempt: where it ran and what it said.
        var detail: String?
    }

    func run() -> Int32 {
        let jobs: [JobRecord]
        do { jobs = try intake.jobs() } catch { return error.status }
        let box = Outbox(root: outbox)
        let states = jobs.map { JobFolderState($0, outbox: box) }
        let conflicts = states.compactMap { $0.conflict(with: $0.job.spec.parameters(model: $0.job.model)) }
        for conflict in conflicts { Log.error("\(outbox.path)/\(conflict)") }
        if !conflicts.isEmpty { return SysExits.cantCreate }

        let n = shardCount ?? OneshotStatus.recordedShardCount(states) ?? 1
        let counts = jobs.map(\.spec.imageCount)
        let total = counts.reduce(0, +)
        let done = states.map { $0.complete.filter { $0 }.count }.reduce(0, +)
        print("\(outbox.path): \(jobs.count) job(s), \(total) image(s) in \(n) task(s)\(shardCount == nil && n > 1 ? " (N from the task records)" : ""): \(done) done, \(total - done) missing")
        var complete = done == total
        for state in states {
            let job = state.job
            let have = state.complete.filter { $0 }.count
            var line = "job \(job.folder): \(have)/\(job.spec.imageCount) images"
            let missing = state.missing
            if !missing.isEmpty {
                let names = missing.prefix(8).map { String(format: "image-%03d.png", $0 + 1) }
                line += " (missing \(names.joined(separator: ", "))\(missing.count > 8 ? ", …" : ""))"
            }
            if let result = state.result {
                let whole = result.status == JobState.done.rawValue && result.images.count == job.spec.imageCount
                line += ", result.json \(result.status)" + (whole ? "" : " with \(result.images.count) images")
                if !whole { complete = false }
            } else {
                line += missing.isEmpty ? ", result.json missing (run any task again to write it)" : ", no result.json yet"
                complete = false
            }
            print(line)
        }
        var toResubmit: [Int] = []
        var unfinished = false
        for k in 0..<n {
            guard let shard = try? Shard(index: k, count: n) else { continue }
            let state = OneshotStatus.task(shard, states: states)
            var line = "task \(shard): \(state.kind.rawValue), \(state.complete)/\(state.assigned) images"
            if let detail = state.detail { line += " (\(detail))" }
            print(line)
            if state.kind != .done { toResubmit.append(k) }
            if state.kind == .unfinished { unfinished = true }
        }
        if !toResubmit.isEmpty {
            print("resubmit: --array=\(toResubmit.map(String.init).joined(separator: ","))"
                  + (unfinished ? " (tasks 'started, not finished' may still be running: check squeue first)" : ""))
        }
        return complete && toResubmit.isEmpty ? SysExits.ok : SysExits.tempFail
    }

    /// Task `shard`'s standing: done when all its images are there, else what its records say.
    static func task(_ shard: Shard, states: [JobFolderState]) -> TaskState {
        let shares = shard.images(jobCounts: states.map(\.job.spec.imageCount))
        var assigned = 0, have = 0
        var records: [ShardRecord] = []
        for (state, share) in zip(states, shares) where !share.isEmpty {
            assigned += share.count
            have += share.filter { state.complete[$0] }.count
            if let record = state.record(shard) { records.append(record) }
        }
        // Where it ran last, and how often it started on one job at most.
        let last = records.max { $0.attemptStarted < $1.attemptStarted }
        let attempts = records.map(\.attempts).max() ?? 0
        var detail = last.map { r in
            "\(r.schedulerTask.map { $0 + " " } ?? "")on \(r.host) pid \(r.pid), \(attempts) attempt\(attempts == 1 ? "" : "s")"
        }
        let kind: TaskState.Kind
        if have == assigned {
            kind = .done
        } else if let failed = records.first(where: { $0.status == .failed }) {
            kind = .failed
            detail = (detail.map { $0 + ": " } ?? "") + (failed.error ?? "no reason recorded")
        } else if records.contains(where: { $0.status == .running }) {
            kind = .unfinished
        } else if records.contains(where: { $0.status == .interrupted }) {
            kind = .interrupted
        } else if records.isEmpty {
            kind = .notStarted
        } else {
            // Every record says done, yet images are gone (removed by hand): to be made again.
            kind = .interrupted
        }
        return TaskState(kind: kind, complete: have, assigned: assigned, detail: detail)
    }

    /// The task count of the task record started last, if any.
    static func recordedShardCount(_ states: [JobFolderState]) -> Int? {
        states.flatMap(\.records).max { $0.attemptStarted < $1.attemptStarted }?.shards
    }
}
