import CInotifyTools
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the inbox watcher saw while waiting.
enum InboxChange: Equatable {
    /// Names of files closed after writing or moved in, as bytes (not always UTF-8).
    case files([RawName])
    /// The kernel's event queue overflowed: events were lost, rescan.
    case overflow
    case timeout
}

/// inotify on the inbox through libinotifytools (`IN_CLOSE_WRITE | IN_MOVED_TO`).
/// libinotifytools keeps process-global state: one watcher per process, used from one thread.
final class InboxWatcher {
    let directory: URL

    init(directory: URL) throws {
        self.directory = directory
        guard inotifytools_initialize() != 0 else {
            throw RunError("inotify: cannot initialise (\(String(cString: strerror(inotifytools_error()))))")
        }
        guard inotifytools_watch_file(directory.path, Int32(IN_CLOSE_WRITE | IN_MOVED_TO)) != 0 else {
            throw RunError("inotify: cannot watch \(directory.path) (\(String(cString: strerror(inotifytools_error()))))")
        }
    }

    deinit { inotifytools_cleanup() }

    /// Waits up to `timeout` seconds for the first event, then drains what is already
    /// queued, up to `limit` names.
    func wait(timeout: Int, limit: Int = 1024) -> InboxChange {
        var names: [RawName] = []
        var wait = timeout
        var settled = false
        while names.count < limit {
            guard let event = inotifytools_next_events(wait, 1) else {
                // Files often arrive in bursts: let a burst settle once (20 ms) so it is
                // journaled in one batch (one fsync) rather than file by file.
                if names.isEmpty || settled { break }
                settled = true
                usleep(20_000)
                continue
            }
            wait = 0
            if event.pointee.mask & UInt32(IN_Q_OVERFLOW) != 0 { return .overflow }
            guard event.pointee.len > 0 else { continue }
            // `struct inotify_event` ends in a flexible `char name[len]` that Swift does not import.
            let start = UnsafeRawPointer(event).advanced(by: MemoryLayout<inotify_event>.size).assumingMemoryBound(to: UInt8.self)
            let bytes = Array(UnsafeBufferPointer(start: start, count: Int(event.pointee.len)).prefix(while: { $0 != 0 }))
            names.append(RawName(bytes))
        }
        return names.isEmpty ? .timeout : .files(names)
    }
}
