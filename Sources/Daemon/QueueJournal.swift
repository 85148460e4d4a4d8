import Foundation
import Jobs
#if canImport(Glibc)
import Glibc
#endif

/// The queue's persistence in the state directory: `queue.snapshot` (whole state, written
/// temp + fsync + rename) and `queue.journal` (append-only JSON lines, fsynced per batch).
/// Every journal line is a full upsert of a record (or a removal / queue flag), so replaying
/// it over any later snapshot gives the same state: compaction (new snapshot, then truncate
/// the journal) is safe to interrupt anywhere. A record is appended whole or not at all: a
/// short or failed write (a full disk) is cut back to the last good offset before the error
/// is reported, and a torn tail left by a crash mid-append (its batch was never acknowledged)
/// is cut off at `load`, before anything is appended after it.
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
    /// Length of the journal up to its last whole record: where the next append starts.
    private var goodLength: off_t = 0
    /// Set when an append failed and cutting it back failed too: the next append cuts first.
    private var needsCut = false
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
        var wholeLength = 0
        if let data = FileManager.default.contents(atPath: journalURL.path) {
            let decoder = JSONDecoder()
            // Bytes after the last newline are a torn append: never acknowledged, cut off below.
            wholeLength = (data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? 0
            if wholeLength < data.count {
                Log.warning("queue journal: dropping a torn last record (\(data.count - wholeLength) bytes, never acknowledged)")
            }
            for line in data.prefix(wholeLength).split(separator: UInt8(ascii: "\n")) {
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
        try openJournal(wholeLength: off_t(wholeLength))
        return state
    }

    private func openJournal(wholeLength: off_t) throws {
        if fd >= 0 { close(fd) }
        fd = open(journalURL.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileError("open", journalURL.path) }
        goodLength = wholeLength
        try cutBack()
        // The journal's directory entry must be durable too, not only its contents.
        try AtomicFile.syncDirectory(directory.path)
    }

    /// Cuts the file back to `goodLength` (a no-op when it is that long) and syncs.
    private func cutBack() throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else { needsCut = true; throw FileError("stat", journalURL.path) }
        guard st.st_size != goodLength else { needsCut = false; return }
        guard ftruncate(fd, goodLength) == 0, fdatasync(fd) == 0 else {
            needsCut = true
            throw FileError("cut back the torn end of", journalURL.path)
        }
        needsCut = false
    }

    /// Appends entries and fsyncs; returns when they are durable. On any failure (a short
    /// write on a full disk, a failed fsync) the file is cut back to its last whole record
    /// before the error is thrown, so no part of these entries stays for a later record to
    /// be glued onto.
    func append(_ entries: [Entry]) throws {
        guard !entries.isEmpty else { return }
        var bytes: [UInt8] = []
        for entry in entries {
            bytes += try encoder.encode(entry)
            bytes.append(UInt8(ascii: "\n"))
        }
        if needsCut { try cutBack() }
        do {
            try bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = write(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                    if n < 0 { if errno == EINTR { continue }; throw FileError("append to", journalURL.path) }
                    if n == 0 { throw FileError("append to", journalURL.path, code: ENOSPC) }
                    offset += n
                }
            }
            guard fdatasync(fd) == 0 else { throw FileError("fsync", journalURL.path) }
        } catch {
            do { try cutBack() } catch { Log.error("queue journal: \(error); cut back before the next append") }
            throw error
        }
        goodLength += off_t(bytes.count)
        entriesSinceSnapshot += entries.count
    }

    /// Writes the whole state as a new snapshot, then empties the journal.
    func compact(_ snapshot: Snapshot) throws {
        try AtomicFile.write(Array(try encoder.encode(snapshot)), to: snapshotURL, mode: 0o600)
        guard ftruncate(fd, 0) == 0, fsync(fd) == 0 else { needsCut = true; throw FileError("truncate", journalURL.path) }
        goodLength = 0
        needsCut = false
        entriesSinceSnapshot = 0
    }
}
