#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Bounded newline-delimited reading and complete writing on a connected socket.
///
/// Not thread-safe: one reader per channel. Writes may come from another thread when the
/// caller serialises them (the server does, per connection).
public final class LineChannel {
    /// The socket; owned by the channel and closed by ``close()`` or deinit.
    public let fd: Int32
    /// Longest accepted incoming line, newline excluded.
    public let maxLineBytes: Int
    private var buffer: [UInt8] = []
    private var scanned = 0
    private var closed = false
    /// When set, a line must be complete this many seconds after its first byte arrived,
    /// however slowly the bytes trickle in (the receive timeout alone restarts with every
    /// byte); else ``readLine()`` throws ``WireError/lineTimedOut(seconds:)``.
    public var lineTimeoutSeconds: Double?
    /// Monotonic time the first byte of the unfinished line arrived.
    private var lineStarted: Double?

    public init(fd: Int32, maxLineBytes: Int) {
        self.fd = fd
        self.maxLineBytes = maxLineBytes
    }

    deinit { close() }

    /// Closes the socket (idempotent).
    public func close() {
        if !closed {
            closed = true
            _ = Glibc.close(fd)
        }
    }

    /// Reads the next line without its `\n`; nil on a clean end of stream.
    ///
    /// Throws ``WireError/lineTooLong(limit:)`` as soon as more than ``maxLineBytes`` bytes
    /// arrive without a newline (it never buffers more than that plus one read).
    public func readLine() throws -> Data? {
        while true {
            if let newline = buffer[scanned...].firstIndex(of: 0x0A) {
                let line = Data(buffer[0..<newline])
                buffer.removeSubrange(0...newline)
                scanned = 0
                lineStarted = buffer.isEmpty ? nil : LineChannel.now()
                if line.count > maxLineBytes { throw WireError.lineTooLong(limit: maxLineBytes) }
                return line
            }
            scanned = buffer.count
            if buffer.count > maxLineBytes { throw WireError.lineTooLong(limit: maxLineBytes) }
            if let limit = lineTimeoutSeconds, let started = lineStarted {
                let remaining = started + limit - LineChannel.now()
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = remaining > 0 ? poll(&pfd, 1, Int32(min(remaining * 1000, 1e9).rounded(.up))) : 0
                if ready < 0 && errno == EINTR { continue }
                if ready == 0 { throw WireError.lineTimedOut(seconds: limit) }
            }
            var chunk = [UInt8](repeating: 0, count: 16 * 1024)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                if buffer.isEmpty { lineStarted = LineChannel.now() }
                buffer.append(contentsOf: chunk[0..<n])
            } else if n == 0 {
                if buffer.isEmpty { return nil }
                throw WireError.truncatedLine
            } else {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK { throw WireError.timedOut }
                throw WireError.system(call: "recv", errno: code)
            }
        }
    }

    private static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Reads and decodes the next line; nil on a clean end of stream.
    public func read<T: Decodable>(_ type: T.Type) throws -> T? {
        guard let line = try readLine() else { return nil }
        return try WireCodec.decode(type, from: line)
    }

    /// Encodes `value` as one line and writes all of it.
    public func write<T: Encodable>(_ value: T) throws {
        try writeAll(WireCodec.encodeLine(value))
    }

    /// Writes every byte of `data`, retrying on EINTR and short writes. Never raises SIGPIPE.
    public func writeAll(_ data: Data) throws {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let n = send(fd, base + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n > 0 {
                    offset += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    throw WireError.system(call: "send", errno: n < 0 ? errno : EPIPE)
                }
            }
        }
    }

    /// Sets a send timeout (SO_SNDTIMEO) in seconds; 0 means none. A send that times out
    /// throws ``WireError/system(call:errno:)`` with EAGAIN.
    public func setSendTimeout(seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sets a receive timeout (SO_RCVTIMEO) in seconds; 0 means none.
    public func setReceiveTimeout(seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
}
