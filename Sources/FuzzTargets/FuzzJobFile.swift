import Foundation
import Jobs

/// Job files: every error names a position inside the file (or 0:0 for whole-file errors),
/// and every accepted job is within the limits the parser was given.
enum FuzzJobFile {
    static let limits: JobLimits = {
        var l = JobLimits()
        l.maxJobsPerFile = 20
        return l
    }()

    static func run(_ bytes: [UInt8]) {
        let parser = JobFileParser(limits: limits, knownModels: ["shapes", "sd15"])
        do {
            let jobs = try parser.parse(bytes: bytes, file: "fuzz.yaml")
            FuzzInvariant.check(!jobs.isEmpty && jobs.count <= limits.maxJobsPerFile, "\(jobs.count) jobs accepted")
            for job in jobs {
                FuzzInvariant.check(job.steps >= 1 && job.steps <= limits.maxSteps, "steps \(job.steps)")
                FuzzInvariant.check(job.count >= 1 && job.count <= limits.maxCount, "count \(job.count)")
                FuzzInvariant.check(job.prompt.utf8.count <= limits.maxPromptBytes, "prompt of \(job.prompt.utf8.count) bytes")
                FuzzInvariant.check(job.width <= limits.maxWidth && job.height <= limits.maxHeight, "size \(job.width)x\(job.height)")
            }
        } catch let error as SourceError {
            FuzzSourcePosition.check(error, in: bytes)
        } catch {}
    }
}

/// A `file:line:column` error points into the text it was read from.
enum FuzzSourcePosition {
    static func check(_ error: SourceError, in bytes: [UInt8]) {
        // An upper bound on the lines as YAML counts them: LF, CR, CR LF, and in UTF-8 NEL
        // (C2 85), LINE and PARAGRAPH SEPARATOR (E2 80 A8/A9) each end a line in libyaml.
        let lines = 1 + bytes.reduce(0) { $0 + ($1 == 0x0A || $1 == 0x0D || $1 == 0x85 || $1 == 0xA8 || $1 == 0xA9 ? 1 : 0) }
        FuzzInvariant.check(error.line >= 0 && error.line <= lines + 1, "error at line \(error.line) of a \(lines)-line file: \(error)")
        FuzzInvariant.check(error.column >= 0 && error.column <= bytes.count + 1, "error at column \(error.column): \(error)")
        FuzzInvariant.check(!"\(error)".isEmpty, "an error without a message")
    }
}
