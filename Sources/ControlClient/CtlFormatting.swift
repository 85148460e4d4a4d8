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
        let header = finished ? finishedHeader : ["ID", "NAME", "STATE", "PRI", "OWNER", "MODEL", "SUBMITTED", "PROGRESS"]
        return table(header, jobs.map { jobRow($0, finished: finished) })
    }

    static let finishedHeader = ["ID", "NAME", "STATE", "PRI", "OWNER", "MODEL", "FINISHED", "RESULT"]

    static func jobRow(_ job: JobInfo, finished: Bool) -> [String] {
        let last = finished ? (job.error ?? job.outbox ?? "") : progress(job)
        return [job.id, job.name, job.state.rawValue, String(job.priority), job.owner.user, job.model,
                time(finished ? job.finished : job.submitted), last]
    }

    /// `show` output: one field per line, then one line per image (path, seed, time).
    public static func jobDetail(_ job: JobInfo) -> String {
        var lines: [(String, String)] = [
            ("id", job.id), ("name", job.name), ("state", job.stateDescription), ("priority", String(job.priority)),
            ("owner", "\(job.owner.user) (uid \(job.owner.uid))"),
        ]
        if let source = job.source { lines.append(("source", source + (job.document.map { ", document \($0)" } ?? ""))) }
        lines += parameterLines(job)
        lines.append(("submitted", time(job.submitted)))
        if job.started != nil { lines.append(("started", time(job.started))) }
        if job.finished != nil { lines.append(("finished", time(job.finished))) }
        if let seconds = job.seconds { lines.append(("run time", seconds3(seconds))) }
        if let perImage = job.secondsPerImage { lines.append(("per image", seconds3(perImage))) }
        if job.progress != nil { lines.append(("progress", progress(job))) }
        lines.append(("attempts", String(job.attempts)))
        if let error = job.error { lines.append(("error", error)) }
        if let outbox = job.outbox { lines.append(("outbox", outbox)) }
        for image in job.images ?? [] {
            lines.append(("image", "\(image.path)  seed \(image.seed)" + (image.seconds.map { "  \(seconds3($0))" } ?? "")))
        }
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n") + "\n"
    }

    /// A number as a job file writes it: whole ones without ".0". The same rule as
    /// `RestartSegment.description` (Sampling, which this client does not link), range guard
    /// included, so a reply's out-of-range value prints instead of trapping `Int(_:)`.
    static func jobFileNumber(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : "\(x)"
    }

    /// The lines of ``jobDetail(_:)`` that name what makes the images: the job's
    /// ``JobParameters`` when the daemon sends them, else the summary fields.
    static func parameterLines(_ job: JobInfo) -> [(String, String)] {
        guard let p = job.parameters else {
            return [("model", job.model), ("prompt", job.prompt), ("steps", String(job.steps))]
                + (job.count.map { [("count", String($0))] } ?? [])
        }
        var lines: [(String, String)] = [("model", p.model), ("prompt", p.prompt)]
        func add(_ key: String, _ value: String?) { if let value { lines.append((key, value)) } }
        add("negative", p.negativePrompt)
        if let width = p.width, let height = p.height { lines.append(("size", "\(width)x\(height)")) }
        add("steps", p.steps.map(String.init))
        add("sampler", p.sampler)
        add("eta", p.eta.map { "\($0)" })
        add("restart", p.restart.map { r in "[" + r.map(jobFileNumber).joined(separator: ", ") + "]" })
        add("schedule", p.schedule)
        add("guidance", p.guidance.map { "\($0)" })
        add("seed", p.seed.map(String.init))
        add("count", p.count.map(String.init))
        add("rng", p.rng)
        add("snapshots", p.snapshots.map { $0 == 0 ? "none" : "every \($0) steps" })
        for lora in p.loras ?? [] { lines.append(("lora", "\(lora.name) \(lora.weight)  \(lora.file)")) }
        add("init image", p.initImage)
        add("strength", p.strength.map { "\($0)" })
        add("resize", p.resize)
        add("mask", p.mask)
        add("mask blur", p.maskBlur.map { "\($0)" })
        add("upscale", p.upscale.map { "\($0) (strength \(p.upscaleStrength.map { "\($0)" } ?? "?"))" })
        for axis in ["x", "y"] {
            if let entry = p.grid?[axis]?.first { lines.append(("grid \(axis)", "\(entry.key): \(entry.value.joined(separator: ", "))")) }
        }
        return lines
    }

    /// `12.3 s`.
    static func seconds3(_ seconds: Double) -> String { String(format: "%.1f s", seconds) }

    /// `history` output: finished jobs and rejected files in one table, newest first.
    public static func history(_ entries: [HistoryEntry]) -> String {
        let rows = entries.map { entry -> [String] in
            switch entry {
            case .job(let job):
                return jobRow(job, finished: true)
            case .rejection(let rejection):
                return ["—", rejection.file, rejection.state, "", "", "", time(rejection.time),
                        "\(rejection.reason) (\(rejection.path))"]
            }
        }
        return table(finishedHeader, rows)
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
        if let rejected = status.rejected {
            text += "rejected: \(rejected) file\(rejected == 1 ? "" : "s") in \(status.outbox)/rejected (diffusionctl history lists them)\n"
        }
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
