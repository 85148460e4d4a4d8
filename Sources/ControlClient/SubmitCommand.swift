#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ControlProtocol

/// `diffusionctl submit FILE…`: copies the files into the inbox, then (unless told not to)
/// polls the daemon's `intake` verb until each file was taken in, and reports the job ids of
/// its documents or why it was rejected.
struct SubmitCommand {
    /// What `submit` reports for one file (`--json`: an array of these).
    struct Report: Encodable {
        /// The file as named on the command line.
        var file: String
        /// Its copy in the inbox.
        var path: String
        /// The jobs of its documents, once taken in.
        var jobs: [IntakeOutcome.Job]?
        /// Why it was rejected.
        var rejection: RejectionInfo?
        /// True when the wait ended before the daemon took the file in.
        var pending: Bool?
    }

    let client: ControlSession
    let daemon: DaemonStatus
    /// Seconds to wait for the intake; nil: do not wait.
    let wait: Double?
    let json: Bool
    let output: CtlOutput

    /// Pause between two polls of the daemon.
    static let pollInterval: useconds_t = 100_000

    func run(_ files: [String]) throws -> Int32 {
        var status = SysExits.ok
        func fail(_ code: Int32, _ message: String) {
            output.err("diffusionctl: \(message)\n")
            if status == SysExits.ok { status = code }
        }
        var placed: [(file: String, copy: JobSubmission.Placed)] = []
        for file in files {
            do {
                placed.append((file, try JobSubmission.place(file: file, inbox: daemon.inbox)))
            } catch let error as SubmitError {
                fail(error.exitCode, "\(error)")
            } catch {
                fail(SysExits.ioError, "\(file): \(error)")
            }
        }
        var reports = placed.map { Report(file: $0.file, path: $0.copy.path) }
        if let wait, let since = daemon.intakeSequence {
            let outcomes = try waitForIntake(of: placed.map(\.copy), since: since, timeout: wait)
            for (index, outcome) in outcomes.enumerated() {
                reports[index].jobs = outcome?.jobs
                reports[index].rejection = outcome?.rejection
                reports[index].pending = outcome == nil ? true : nil
            }
        } else if wait != nil && !placed.isEmpty {
            output.err("diffusionctl: this diffusiond does not report what its intake does; not waiting (see its log)\n")
        }
        for report in reports {
            if let rejection = report.rejection {
                fail(SysExits.dataError, "\(report.file) rejected: \(rejection.reason) (the file is now \(rejection.path))")
            } else if report.pending == true {
                fail(SysExits.tempFail, "\(report.file): not taken in within \(CtlFormatting.duration(wait)); "
                    + "it waits as \(report.path) (the daemon's log says why)")
            } else if let jobs = report.jobs, !json {
                for job in jobs {
                    let document = jobs.count > 1 ? " document \(job.document)" : ""
                    output.out("\(report.file)\(document): job \(job.id) (\(job.name))\n")
                }
            } else if !json {
                output.out("\(report.file) → \(report.path)\n")
            }
        }
        if json { output.printJSON(reports) }
        return status
    }

    /// Polls `intake` until every copy has an outcome or `timeout` seconds passed; returns
    /// the outcome of each copy, nil where none came.
    private func waitForIntake(of copies: [JobSubmission.Placed], since: Int, timeout: Double) throws -> [IntakeOutcome?] {
        var found = [IntakeOutcome?](repeating: nil, count: copies.count)
        let deadline = Date().addingTimeInterval(timeout)
        while found.contains(where: { $0 == nil }) {
            let outcomes = try client.intake(since: since)
            for (index, copy) in copies.enumerated() where found[index] == nil {
                let name = (copy.path as NSString).lastPathComponent
                found[index] = outcomes.first { outcome in
                    outcome.file == name && (outcome.inode == nil || copy.inode == nil || outcome.inode == copy.inode)
                }
            }
            guard found.contains(where: { $0 == nil }), Date() < deadline else { break }
            usleep(SubmitCommand.pollInterval)
        }
        return found
    }
}
