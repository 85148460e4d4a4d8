import Foundation

/// Thread-safe fan-out of events to subscribers, each known by a token: the queue's
/// observers and the control server's `watch` connections (``ControlEventHub``).
///
/// ``publish(_:)`` takes the current subscribers under a lock and calls them outside it, so
/// a subscriber may subscribe or unsubscribe from its sink; sinks run on the publishing
/// thread and must return quickly.
public final class EventFanOut<Event>: @unchecked Sendable {
    private let lock = NSLock()
    private var sinks: [Int: (Event) -> Void] = [:]
    private var nextToken = 0

    public init() {}

    /// Sends `event` to every current subscriber.
    public func publish(_ event: Event) { publish([event]) }

    /// Sends `events`, in order, to the subscribers there were when called.
    public func publish(_ events: [Event]) {
        lock.lock()
        let current = Array(sinks.values)
        lock.unlock()
        for event in events { for sink in current { sink(event) } }
    }

    /// Adds a subscriber; returns a token for ``unsubscribe(_:)``.
    public func subscribe(_ sink: @escaping (Event) -> Void) -> Int {
        lock.lock()
        defer { lock.unlock() }
        nextToken += 1
        sinks[nextToken] = sink
        return nextToken
    }

    /// Removes a subscriber (unknown tokens are ignored).
    public func unsubscribe(_ token: Int) {
        lock.lock()
        sinks[token] = nil
        lock.unlock()
    }

    /// Number of current subscribers.
    public var subscriberCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return sinks.count
    }
}
