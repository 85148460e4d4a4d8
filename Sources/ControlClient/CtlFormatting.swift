import Foundation
import ControlProtocol

/// Text rendering for `diffusionctl`'s human output: tables, durations, times, bars.
public enum CtlFormatting {
    /// Left-aligned columns separated by two spaces; the last column is not padded.
    public static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for row in all {
            for (column, cell) in row.enumerated() where column < widths.count {
                widths[column] = max(widths[column], cell.count)
            }
        }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// `1h02m`, `3m07s`, `42s`; `—` for unknown or non-finite.
    public static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds.isFinite, seconds >= 0 else { return "—" }
        let total = Int(seconds.rounded())
        if total >= 86_400 { return "\(total / 86_400)d\(String(format: "%02d", (total % 86_400) / 3600))h" }
        if total >= 3600 { return "\(total / 3600)h\(String(format: "%02d", (total % 3600) / 60))m" }
        if total >= 60 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
        return "\(total)s"
    }

    /// Local time `YYYY-MM-DD HH:MM:SS`.
    public static func time(_ date: Date?) -> String {
        guard let date else { return "—" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: date)
    }

    /// `[#####.....]` of `width` cells for `fraction` in 0…1.
    public static func bar(_ fraction: Double, width: Int = 30) -> String {
        let clamped = fraction.isFinite ? min(1, max(0, fraction)) : 0
        let filled = Int((clamped * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }

    /// `step 5/20, image 2/3 (41%)` or `—`.
    public static func progress(_ job: JobInfo) -> String {
        guard let progress = job.progress else { return job.state == .running ? "starting" : "—" }
        var text = "step \(progress.step)/\(progress.total)"
        if progress.count > 1 { text += ", image \(progress.image + 1)/\(progress.count)" }
        return text + " (\(Int((progress.fraction * 100).rounded(.down)))%)"
    }

    /// Rows of the queue/history table.
    public static func jobTable(_ jobs: [JobInfo], finished: Bool = false) -> String {
        let header = finished
            ? ["ID", "NAME", "STATE", "PRI", "OWNER", "MODEL", "FINISHED", "RESULT"]
            : ["ID", "NAME", "STATE", "PRI", "OWNER", "MODEL", "SUBMITTED", "PROGRESS"]
        let rows = jobs.map { job -> [String] in
            let last = finished ? (job.error ?? job.outbox ?? "") : progress(job)
            return [job.id, job.name, job.state.rawValue, String(job.priority), job.owner.user, job.model,
                    time(finished ? job.finished : job.submitted), last]
        }
        return table(header, rows)
    }

    /// `show` output: one field per line.
    public static func jobDetail(_ job: JobInfo) -> String {
        var lines: [(String, String)] = [
            ("id", job.id), ("name", job.name), ("state", job.state.rawValue), ("priority", String(job.priority)),
            ("owner", "\(job.owner.user) (uid \(job.owner.uid))"), ("model", job.model),
            ("prompt", job.prompt), ("steps", String(job.steps)),
        ]
        if let count = job.count { lines.append(("count", String(count))) }
        lines.append(("submitted", time(job.submitted)))
        if job.started != nil { lines.append(("started", time(job.started))) }
        if job.finished != nil { lines.append(("finished", time(job.finished))) }
        if job.progress != nil { lines.append(("progress", progress(job))) }
        lines.append(("attempts", String(job.attempts)))
        if let error = job.error { lines.append(("error", error)) }
        if let outbox = job.outbox { lines.append(("outbox", outbox)) }
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n") + "\n"
    }

    /// `status` output.
    public static func status(_ status: DaemonStatus, socket: String) -> String {
        let name = status.version.hasPrefix("diffusiond") ? status.version : "diffusiond \(status.version)"
        var text = "\(name): \(status.paused ? "paused (not starting new jobs)" : "accepting jobs")"
        text += ", pid \(status.pid), up \(duration(status.uptime))\n"
        if let running = status.running {
            text += "running:  \(running.id) \(running.name) [\(running.model)] \(progress(running))\n"
        } else {
            text += "running:  nothing\n"
        }
        text += "jobs:     " + JobState.allCases.map { "\($0.rawValue) \(status.count($0))" }.joined(separator: ", ") + "\n"
        text += "model:    \(status.loadedModel ?? "none loaded")\n"
        text += "inbox:    \(status.inbox)\n"
        text += "outbox:   \(status.outbox)\n"
        text += "socket:   \(socket)\n"
        return text
    }

    /// `models` output.
    public static func models(_ models: [ModelInfo]) -> String {
        table(["NAME", "DEFAULT", "LOADED", "PATH"], models.map {
            [$0.name, $0.isDefault ? "yes" : "", $0.loaded ? "yes" : "", $0.path]
        })
    }
}
