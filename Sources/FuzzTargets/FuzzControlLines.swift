import ControlProtocol
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The control socket's lines: the bytes go through a real socket pair and `LineChannel`
/// (the daemon's framing, with its line limit); each line is then decoded as every message
/// type either side reads.
enum FuzzControlLines {
    static let maxLineBytes = 1024

    static func run(_ bytes: [UInt8]) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { return }
        // Inputs are small (libFuzzer's -max_len): they fit the socket buffer, so one write
        // and a close give the reader the whole stream and then its end.
        let written = bytes.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
        close(fds[1])
        let channel = LineChannel(fd: fds[0], maxLineBytes: maxLineBytes)
        guard written == bytes.count else { return }
        var total = 0
        while let line = try? channel.readLine() {
            FuzzInvariant.check(line.count <= maxLineBytes, "a line of \(line.count) bytes passed the limit")
            total += line.count + 1
            FuzzInvariant.check(total <= bytes.count + 1, "more bytes read than written")
            _ = try? WireCodec.decode(MessageEnvelope.self, from: line)
            _ = try? WireCodec.decode(ClientHello.self, from: line)
            _ = try? WireCodec.decode(Request.self, from: line)
            _ = try? WireCodec.decode(ServerMessage.self, from: line)
            _ = try? WireCodec.decode(ControlEvent.self, from: line)
        }
    }
}
