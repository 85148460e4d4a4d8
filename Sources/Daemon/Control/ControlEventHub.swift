import Foundation
import ControlProtocol

/// Fan-out of ``ControlEvent``s from the daemon (worker, queue) to `watch` connections.
///
/// Thread-safe. ``publish(_:)`` never blocks on a subscriber: each subscriber's sink must
/// return quickly (the server's sinks append to a bounded buffer and wake a thread).
public final class ControlEventHub: @unchecked Sendable {
    private let lock = NSLock()
    private var sinks: [Int: (ControlEvent) -> Void] = [:]
    private var nextToken = 0

    public init() {}

    /// Sends `event` to every current subscriber.
    public func publish(_ event: ControlEvent) {
        lock.lock()
        let current = Array(sinks.values)
        lock.unlock()
        for sink in current { sink(event) }
    }

    /// Adds a subscriber; returns a token for ``unsubscribe(_:)``.
    public func subscribe(_ sink: @escaping (ControlEvent) -> Void) -> Int {
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
