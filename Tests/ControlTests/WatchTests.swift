#if canImport(Glibc)
import Glibc
#endif
import XCTest
import Foundation
import ControlProtocol
import ControlClient

/// `diffusionctl watch` end to end: events published by the handler reach the command,
/// which measures the speed from the step timestamps and estimates the time left.
final class WatchTests: XCTestCase {
    func testWatchJSONStreamsEventsWithMeasuredRateAndETAs() throws {
        let f = try ServerFixture()
        defer { f.tearDown() }
        var running = f.queue.add(name: "now", priority: 50, steps: 10)
        f.queue.add(name: "next", priority: 50, steps: 20)
        running.state = .running

        let capture = Capture()
        let finished = DispatchSemaphore(value: 0)
        Thread {
            let code = DiffusionCtl.run(["--socket", f.socketPath, "--json", "watch"], environment: [:],
                                        output: CtlOutput(out: { capture.append($0) }, err: { _ in }, isTerminal: false))
            capture.finish(code)
            finished.signal()
        }.start()
        // Synchronisation only (no timing is asserted): wait until the watch is subscribed.
        var waited = 0
        while f.queue.events.subscriberCount == 0 && waited < 3000 {
            usleep(10_000)
            waited += 1
        }
        XCTAssertEqual(f.queue.events.subscriberCount, 1, "watch subscribed")

        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        f.queue.events.publish(ControlEvent(kind: .jobStarted, at: t0, job: running))
        // The first step carries the daemon's own figure; later ones are measured (0.5 s apart).
        for step in 1...4 {
            f.queue.events.publish(ControlEvent(kind: .step, at: t0.addingTimeInterval(Double(step) * 0.5), id: running.id,
                                                progress: JobInfo.Progress(step: step, total: 10, image: 0, count: 1,
                                                                           rate: step == 1 ? 4 : 1)))
        }
        // Wait for the four step lines, then end the stream the way a daemon stop does.
        waited = 0
        while waited < 3000 {
            if capture.lines.count >= 5 { break }
            usleep(10_000)
            waited += 1
        }
        f.server.stop()
        XCTAssertEqual(finished.wait(timeout: .now() + 30), .success, "watch returns when the daemon hangs up")
        let lines = capture.lines
        XCTAssertEqual(capture.status, 0)
        let objects = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertEqual(objects.compactMap { ($0["event"] as? [String: Any])?["kind"] as? String },
                       ["job_started", "step", "step", "step", "step"])
        let estimates = objects.compactMap { $0["estimate"] as? [String: Any] }
        XCTAssertEqual(estimates[1]["rate"] as? Double ?? 0, 4, accuracy: 1e-9, "one sample: the daemon's figure")
        // Steps 1, 2, 3 at 0.5 s intervals: 2 steps/s measured, preferred to the daemon's 1/s.
        XCTAssertEqual(estimates[2]["rate"] as? Double ?? 0, 2, accuracy: 1e-9)
        XCTAssertEqual(estimates[3]["rate"] as? Double ?? 0, 2, accuracy: 1e-9)
        XCTAssertEqual(estimates[3]["eta_job"] as? Double ?? 0, 3.5, accuracy: 1e-9, "7 steps left at 2/s")
        XCTAssertEqual(estimates[3]["eta_queue"] as? Double ?? 0, 13.5, accuracy: 1e-9, "7 + 20 steps at 2/s")
        XCTAssertEqual(estimates[4]["remaining_steps"] as? Int, 6 + 20)
    }

    /// A step preview reaches `watch` as a `preview` event with the PNG's path: a line of its
    /// own in text, the event with `preview` in JSON.
    func testPreviewEventsNameTheFile() throws {
        for json in [false, true] {
            let f = try ServerFixture()
            defer { f.tearDown() }
            var running = f.queue.add(name: "now", priority: 50, steps: 10)
            running.state = .running
            let capture = Capture()
            let finished = DispatchSemaphore(value: 0)
            Thread {
                let code = DiffusionCtl.run(["--socket", f.socketPath] + (json ? ["--json"] : []) + ["watch"], environment: [:],
                                            output: CtlOutput(out: { capture.append($0) }, err: { _ in }, isTerminal: false))
                capture.finish(code)
                finished.signal()
            }.start()
            var waited = 0
            while f.queue.events.subscriberCount == 0 && waited < 3000 {
                usleep(10_000)
                waited += 1
            }
            let path = "/srv/outbox/\(running.id)/steps/image-001-step-005.png"
            let progress = JobInfo.Progress(step: 5, total: 10, image: 0, count: 1, rate: 1)
            f.queue.events.publish([ControlEvent(kind: .step, id: running.id, progress: progress),
                                    ControlEvent(kind: .preview, id: running.id, progress: progress, preview: path)])
            waited = 0
            while waited < 3000 && !capture.lines.contains(where: { $0.contains("step-005") }) {
                usleep(10_000)
                waited += 1
            }
            f.server.stop()
            XCTAssertEqual(finished.wait(timeout: .now() + 30), .success)
            if json {
                let objects = try capture.lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
                let events = objects.compactMap { $0["event"] as? [String: Any] }
                XCTAssertEqual(events.compactMap { $0["kind"] as? String }, ["step", "preview"])
                XCTAssertEqual(events.last?["preview"] as? String, path)
            } else {
                XCTAssertTrue(capture.lines.contains("preview  \(running.id) image 1/1 step 5/10: \(path)"), "\(capture.lines)")
            }
        }
    }
}

/// Output of a command running on another thread.
private final class Capture: @unchecked Sendable {
    private let lock = NSLock()
    private var text = ""
    private var code: Int32 = -1

    func append(_ more: String) {
        lock.lock()
        text += more
        lock.unlock()
    }

    func finish(_ status: Int32) {
        lock.lock()
        code = status
        lock.unlock()
    }

    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return text.split(separator: "\n").map(String.init)
    }

    var status: Int32 {
        lock.lock()
        defer { lock.unlock() }
        return code
    }
}
