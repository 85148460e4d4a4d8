import Foundation
import Jobs
#if canImport(Glibc)
import Glibc
#endif

/// The queue's persistence in the state directory: `queue.snapshot` (whole state, written
/// temp + fsync + rename) and `queue.journal` (append-only JSON lines, fsynced per batch).
/// Every journal line is a full upsert of a record (or a removal / queue flag), so replaying
/// it over any later snapshot gives the same state: compaction (new snapshot, then truncate
/// the journal) is safe to interrupt anywhere. A torn last line, from a crash mid-append,
/// is ignored: its batch was never acknowledged.
final class QueueJournal {
    struct Snapshot: Codable {
        var nextNumber: Int
        var paused: Bool
        var jobs: [JobRecord]
    }

    enum Entry: Codable {
        case put(JobRecord)
        case remove(String)
        case paused(Bool)
        case nextNumber(Int)
    }

    let directory: URL
    private var snapshotURL: URL { directory.appendingPathComponent("queue.snapshot") }
    private var journalURL: URL { directory.appendingPathComponent("queue.journal") }
    private var fd: Int32 = -1
    private(set) var entriesSinceSnapshot = 0
    private let encoder = JSONEncoder()

    init(directory: URL) {
        self.directory = directory
        encoder.outputFormatting = [.sortedKeys]
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Reads the snapshot and replays the journal, then opens the journal for appending.
    func load() throws -> Snapshot {
        var state = Snapshot(nextNumber: 1, paused: false, jobs: [])
        if let data = FileManager.default.contents(atPath: snapshotURL.path) {
            do {
                state = try JSONDecoder().decode(Snapshot.self, from: data)
            } catch {
                throw FileError("decode queue snapshot (\(error))", snapshotURL.path, code: EIO)
            }
        }
        var jobs: [String: JobRecord] = [:]
        var order: [String] = []
        for job in state.jobs { jobs[job.id] = job; order.append(job.id) }
        if let data = FileManager.default.contents(atPath: journalURL.path) {
            let decoder = JSONDecoder()
            for line in data.split(separator: UInt8(ascii: "\n")) {
                guard let entry = try? decoder.decode(Entry.self, from: Data(line)) else {
                    Log.warning("queue journal: ignoring a torn or unreadable line")
                    continue
                }
                entriesSinceSnapshot += 1
                switch entry {
                case .put(let job):
                    if jobs[job.id] == nil { order.append(job.id) }
                    jobs[job.id] = job
                case .remove(let id): jobs[id] = nil
                case .paused(let p): state.paused = p
                case .nextNumber(let n): state.nextNumber = max(state.nextNumber, n)
                }
            }
        }
        state.jobs = order.compactMap { jobs[$0] }
        state.nextNumber = max(state.nextNumber, (state.jobs.map(\.number).max() ?? 0) + 1)
        try openJournal()
        return state
    }

    private func openJournal() throws {
        if fd >= 0 { close(fd) }
        fd = open(journalURL.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileError("open", journalURL.path) }
        // The journal's directory entry must be durable too, not only its contents.
        try AtomicFile.syncDirectory(directory.path)
    }

    /// Appends entries and fsyncs; returns when they are durable.
    func append(_ entries: [Entry]) throws {
        guard !entries.isEmpty else { return }
        var bytes: [UInt8] = []
        for entry in entries {
            bytes += try encoder.encode(entry)
            bytes.append(UInt8(ascii: "\n"))
        }
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; throw FileError("append to", journalURL.path) }
                offset += n
            }
        }
        guard fdatasync(fd) == 0 else { throw FileError("fsync", journalURL.path) }
        entriesSinceSnapshot += entries.count
    }

    /// Writes the whole state as a new snapshot, then empties the journal.
    func compact(_ snapshot: Snapshot) throws {
        try AtomicFile.write(Array(try encoder.encode(snapshot)), to: snapshotURL, mode: 0o600)
        guard ftruncate(fd, 0) == 0, fsync(fd) == 0 else { throw FileError("truncate", journalURL.path) }
        entriesSinceSnapshot = 0
    }
}
