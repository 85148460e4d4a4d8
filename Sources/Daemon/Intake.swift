import ControlProtocol
import Foundation
import Jobs
#if canImport(Glibc)
import Glibc
#endif

// How a dropped file ends in exactly one place, across crashes
// ----------------------------------------------------------------
// 1. Claim: rename(inbox/F, state/claimed/N~F). From here on the inbox no longer holds F, and
//    N (the next job number) names the claim. A crash leaves it in claimed/, which is
//    processed first at the next start, with the same number.
// 2. Read and validate the claimed file (open O_NOFOLLOW|O_NONBLOCK, fstat: regular file,
//    size cap; owner uid recorded), then read the pictures its jobs name as that owner may
//    (`JobInputs`) and copy them into the jobs' outbox folders. A file that fails goes to outbox/rejected/F with
//    F.error written first (see `Outbox.reject`); a crash in between repeats the rejection.
// 3. Accepted jobs (numbers N, N+1, … for the documents of F) are appended to the queue
//    journal in one fsynced batch, after claimed/ and the inbox were fsynced so the journal
//    never gets ahead of the rename. Only then is claimed/N~F unlinked; a crash before the
//    unlink finds job N in the queue at start and just removes the leftover claim.
// 4. The worker writes outbox/<id>/… file by file (each atomic) and result.json last; only
//    then is the job's terminal state journaled. A crash before result.json re-runs the job
//    (complete images are kept); a crash after it adopts the recorded outcome at start
//    (`JobQueue.recover`), so no job runs twice to completion.
// So at every instant F is in exactly one of: inbox/, claimed/, the queue (then outbox/<id>/
// once finished), or outbox/rejected/.

/// Moves files from the inbox into the queue or to `outbox/rejected/`. Used by one thread only.
final class Intake {
    let inbox: URL
    let claimedDirectory: URL
    let queue: JobQueue
    let outbox: Outbox
    /// Current parser and default model (replaced on reload).
    var parser: JobFileParser
    var defaultModel: String?
    /// Files claimed per queue-journal batch.
    let batchSize = 256
    /// What became of each file taken in (the `intake` verb).
    let outcomes = IntakeLog()

    init(inbox: URL, stateDirectory: URL, queue: JobQueue, outbox: Outbox, parser: JobFileParser, defaultModel: String?) {
        self.inbox = inbox
        self.claimedDirectory = stateDirectory.appendingPathComponent("claimed")
        self.queue = queue
        self.outbox = outbox
        self.parser = parser
        self.defaultModel = defaultModel
    }

    /// Editor backups, partial downloads and dotfiles (where `diffusionctl submit` and
    /// editors write before renaming) are left alone.
    static func isIgnored(_ name: String) -> Bool {
        name.hasPrefix(".") || name.hasSuffix("~") || [".tmp", ".part", ".swp", ".swx"].contains { name.hasSuffix($0) }
    }

    /// Next number to give a claim. Every claim takes a fresh one (rejected ones too), so two
    /// claims never share a number and "job N is queued" proves claim N was journaled.
    private var nextClaim = 0

    /// Reserves `count` job numbers, above every number the queue has used.
    private func reserve(_ count: Int) -> Int {
        let number = max(nextClaim, queue.nextNumber)
        nextClaim = number + max(1, count)
        return number
    }

    /// When the claims left in claimed/ by a failed journal append or rejection (a full disk)
    /// are next tried again; nil when none is waiting.
    private(set) var retryClaimsAt: Date?
    /// Seconds between tries of claims that could not be finished.
    static let claimRetrySeconds = 2.0

    private func claimFailed() {
        if retryClaimsAt == nil { retryClaimsAt = Date().addingTimeInterval(Intake.claimRetrySeconds) }
    }

    /// Tries again to finish the claims a failure left in claimed/, once their time has come
    /// (the main loop calls this every pass); they are not left until a restart.
    func retryFailedClaimsIfDue() {
        guard let due = retryClaimsAt, Date() >= due else { return }
        retryClaimsAt = nil
        recoverClaims(why: "left in the intake by an earlier failure")
    }

    /// Finishes claims left by a crash (or by a failure, see `retryFailedClaimsIfDue`), oldest
    /// first (before anything new is claimed).
    func recoverClaims(why: String = "claimed before the daemon stopped") {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: claimedDirectory.path)) ?? []
        let claims = names.compactMap { name -> (Int, String)? in
            guard let tilde = name.firstIndex(of: "~"), let n = Int(name[..<tilde]) else { return nil }
            return (n, name)
        }.sorted { $0.0 < $1.0 }
        nextClaim = max(nextClaim, (claims.last?.0 ?? 0) + 1)
        for (number, name) in claims {
            var url = claimedDirectory.appendingPathComponent(name)
            if queue.contains(number: number) {
                unlink(url.path)
                continue
            }
            let original = String(name[name.index(after: name.firstIndex(of: "~") ?? name.startIndex)...])
            Log.notice("finishing the intake of \(original), \(why)")
            var assigned = number
            if number < queue.nextNumber {
                // Numbers from here on were used by later claims: renumber the claim first, so
                // that after a crash its number again says whether it was journaled.
                assigned = reserve(1)
                let renamed = claimedDirectory.appendingPathComponent("\(assigned)~\(original)")
                guard rename(url.path, renamed.path) == 0 else {
                    Log.error("cannot renumber the claim \(name): \(String(cString: strerror(errno)))")
                    claimFailed()
                    continue
                }
                url = renamed
            }
            if let records = examine(claimed: url, originalName: original, number: assigned) {
                nextClaim = max(nextClaim, assigned + records.count)
                do {
                    try commit([(url, records)])
                } catch {
                    Log.error("cannot journal the jobs of \(original): \(error); trying again in \(Int(Intake.claimRetrySeconds)) s")
                    claimFailed()
                }
            }
        }
    }

    /// Seconds a regular file must have been left alone before a rescan takes it: a file
    /// written in place may still be open for writing (inotify reports its close anyway).
    static let settleSeconds = 1.0

    /// Lists the inbox and takes in every eligible file, oldest first. Returns true when it
    /// left recently modified files for a later look.
    @discardableResult
    func rescan() -> Bool {
        guard let names = RawDirectory.names(in: inbox.path) else {
            Log.error("cannot list the inbox \(inbox.path)")
            return false
        }
        let now = Date().timeIntervalSince1970
        var dated: [(Double, RawName)] = []
        var deferred = false
        for name in names where !Intake.isIgnored(name.text) {
            var st = stat()
            guard lstat(name.path(in: inbox.path), &st) == 0 else { continue }
            let t = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
            if (st.st_mode & S_IFMT) == S_IFREG, now - t < Intake.settleSeconds, now >= t - 60 {
                deferred = true
                continue
            }
            dated.append((t, name))
        }
        dated.sort { ($0.0, $0.1.text) < ($1.0, $1.1.text) }
        if !dated.isEmpty { Log.debug("rescan: \(dated.count) file(s) in the inbox") }
        take(dated.map(\.1))
        return deferred
    }

    /// Takes in the named inbox files, in order, journaling accepted jobs per batch.
    func take(_ names: [RawName]) {
        var start = 0
        while start < names.count {
            let slice = names[start..<min(names.count, start + batchSize)]
            start += batchSize
            var batch: [(URL, [JobRecord])] = []
            for name in slice where !Intake.isIgnored(name.text) {
                let number = reserve(1)
                guard let claimed = claim(name, number: number) else { continue }
                if let records = examine(claimed: claimed, originalName: name.text, number: number) {
                    batch.append((claimed, records))
                    nextClaim = max(nextClaim, number + records.count)
                }
            }
            do {
                try commit(batch)
            } catch {
                // The claims stay in claimed/ and are tried again shortly (and at the next start).
                Log.error("cannot journal \(batch.count) new job file(s): \(error); trying again in \(Int(Intake.claimRetrySeconds)) s")
                claimFailed()
            }
        }
    }

    /// rename(inbox/F, claimed/N~F). The claim's name is F as text (bytes that are not UTF-8
    /// written `\xHH`), shortened to keep within NAME_MAX.
    private func claim(_ name: RawName, number: Int) -> URL? {
        let target = claimedDirectory.appendingPathComponent("\(number)~\(FileNames.shortened(name.text, toBytes: FileNames.claimBytes))")
        let source = name.path(in: inbox.path)
        guard rename(source, target.path) == 0 else {
            let error = errno
            guard error != ENOENT else { return nil }
            // The file stays in the inbox and every rescan meets it again: say so once.
            if unclaimable.count > 10_000 { unclaimable.removeAll() }
            guard unclaimable.insert(name.bytes).inserted else { return nil }
            let why = (error == EPERM ? InboxPermissions.claimFailure(inbox: inbox, file: inbox.appendingPathComponent(name.text)) : nil)
                ?? String(cString: strerror(error))
            Log.error("cannot claim \(name.text), left in the inbox: \(why)")
            return nil
        }
        unclaimable.remove(name.bytes)
        return target
    }

    /// Inbox names whose claim failed (other than vanishing), so each is logged once.
    private var unclaimable = Set<[UInt8]>()

    /// Makes the claims durable, journals their jobs, then removes the claims.
    private func commit(_ batch: [(URL, [JobRecord])]) throws {
        guard !batch.isEmpty else { return }
        try AtomicFile.syncDirectory(claimedDirectory.path)
        try AtomicFile.syncDirectory(inbox.path)
        try queue.add(batch.flatMap(\.1))
        for (url, records) in batch {
            outcomes.accepted(file: records.first?.sourceFile ?? url.lastPathComponent, claim: url, jobs: records)
            unlink(url.path)
            for job in records {
                Log.info("job \(job.id) queued from \(job.sourceFile) (priority \(job.priority), model \(job.model), uid \(job.owner))")
            }
        }
        try AtomicFile.syncDirectory(claimedDirectory.path)
    }

    /// Reads and validates a claimed file. Returns its jobs, or nil after rejecting it.
    ///
    /// `originalName` is the file's name as text; a name with a control character is
    /// refused (with its position), and everywhere else (errors, `source`, `rejected/`) the
    /// name appears escaped.
    func examine(claimed: URL, originalName rawName: String, number: Int) -> [JobRecord]? {
        let originalName = PrintableText.escaped(rawName, keepLayout: false)
        let result = Intake.read(claimed, name: originalName, maxSize: parser.limits.maxFileSize)
        var reason: String
        var stored: [(folder: String, spec: JobSpec)] = []
        switch (result, PrintableText.firstControl(in: rawName)) {
        case (_, let (position, scalar)?):
            reason = "file name: control character \(PrintableText.describe(scalar)) at character \(position) of the name; "
                + "rename the file without it"
        case (.refused(let why), nil):
            reason = why
        case (.bytes(let bytes, let owner), nil):
            do {
                // Pictures and prompt files are read as the file's owner may read them, folders expanded.
                let access = InputFileAccess(owner: owner, maxBytes: parser.limits.maxInputBytes,
                                             maxPixels: parser.limits.maxInputPixels)
                var parser = self.parser
                parser.inputAccess = access
                let parsed = try parser.parse(bytes: bytes, file: originalName)
                // Each job's pictures are copied into its outbox folder as soon as they are read;
                // if the file is then rejected, the copies go again.
                let folderName = { (k: Int, spec: JobSpec) in JobRecord.folder(id: JobRecord.id(number: number + k), name: spec.name) }
                let resolved = try JobInputs.resolve(parsed, file: originalName, access: access,
                                                     maxJobs: parser.limits.maxJobsPerFile) { k, job in
                    guard job.picture != nil || job.mask != nil else { return }
                    stored.append((folderName(k, job.spec), job.spec))
                    do {
                        try outbox.storeInputs(folder: folderName(k, job.spec), spec: job.spec, picture: job.picture, mask: job.mask)
                    } catch {
                        throw SourceError(file: originalName, line: 0, column: 0, field: nil,
                                          message: "cannot keep a copy of the job's pictures in the outbox: \(error)")
                    }
                }
                let now = Date().timeIntervalSince1970
                var records: [JobRecord] = []
                for (k, parsed) in resolved.enumerated() {
                    let spec = try parsed.resolvingSeed().expandingTemplates(wildcards: parser.wildcards)
                    guard let model = spec.model ?? defaultModel else {
                        throw SourceError(file: originalName, line: 1, column: 1, field: "model",
                                          message: "no model named and the config has no default model")
                    }
                    let id = JobRecord.id(number: number + k)
                    records.append(JobRecord(id: id, number: number + k, spec: spec, sourceFile: originalName, owner: owner,
                                             submitted: now, state: .queued, attempts: 0,
                                             folder: JobRecord.folder(id: id, name: spec.name), started: nil,
                                             finished: nil, error: nil, model: model))
                }
                return records
            } catch {
                reason = "\(error)"
                for (folder, spec) in stored { outbox.discardInputs(folder: folder, spec: spec) }
            }
        }
        if !reason.hasPrefix(originalName + ":") { reason = "\(originalName):0:0: \(reason)" }
        do {
            let name = try outbox.reject(claimed: claimed, originalName: originalName, reason: reason)
            outcomes.rejected(file: originalName, path: outbox.rejected.appendingPathComponent(name), reason: reason)
            Log.warning("rejected \(originalName) → rejected/\(name): \(reason)")
        } catch {
            Log.error("cannot move \(originalName) to rejected/ (left in \(claimed.path), tried again in \(Int(Intake.claimRetrySeconds)) s): \(error)")
            claimFailed()
        }
        return nil
    }

    /// Opens without following links and without blocking on FIFOs, requires a regular file
    /// within the size cap, and returns its bytes and owner.
    static func read(_ url: URL, name: String, maxSize: Int) -> ReadOutcome {
        let fd = open(url.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        if fd < 0 {
            if errno == ELOOP || errno == EMLINK { return .refused("is a symbolic link; drop the file itself, not a link") }
            var st = stat()
            if lstat(url.path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
                return .refused("is \(kind(st.st_mode)), not a regular file")
            }
            return .refused("cannot be opened: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .refused("cannot be examined: \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return .refused("is \(kind(st.st_mode)), not a regular file") }
        guard st.st_size <= maxSize else {
            return .refused("file is \(st.st_size) bytes, more than the limit of \(maxSize)")
        }
        var bytes = [UInt8](repeating: 0, count: maxSize + 1)
        var total = 0
        while total < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress.map { $0 + total }, $0.count - total) }
            if n < 0 { if errno == EINTR || errno == EAGAIN { continue }; return .refused("cannot be read: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            total += n
        }
        guard total <= maxSize else { return .refused("file is more than the limit of \(maxSize) bytes") }
        return .bytes(Array(bytes.prefix(total)), owner: st.st_uid)
    }

    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFDIR: return "a directory"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFLNK: return "a symbolic link"
        default: return "not a plain file"
        }
    }
}

/// Result of reading a claimed file.
enum ReadOutcome {
    case bytes([UInt8], owner: UInt32)
    /// Why the file cannot be a job file (one line).
    case refused(String)
}
