import ControlProtocol

/// Fan-out of ``ControlEvent``s from the daemon (worker, queue) to `watch` connections.
///
/// Thread-safe. ``EventFanOut/publish(_:)`` never blocks on a subscriber: each subscriber's
/// sink must return quickly (the server's sinks append to a bounded buffer and wake a thread).
public typealias ControlEventHub = EventFanOut<ControlEvent>
