import Foundation

/// Constants of the diffusiond control protocol.
///
/// Wire format: newline-delimited JSON (one UTF-8 object per line, `\n` terminated) over a
/// Unix stream socket. The client opens with a ``ClientHello``; the server answers with a
/// ``ServerMessage`` of type `hello` carrying the version both will speak, then the client
/// sends ``Request`` lines and reads one ``ServerMessage`` `response` per request (followed,
/// for list verbs, by `item` lines and one `end` line holding the item count; for `watch`, by
/// `event` lines until the client hangs up).
///
/// Compatibility rules: verbs and fields are only ever added, never removed or re-typed;
/// both sides ignore fields they do not know; a server answers an unknown verb with
/// `bad_request`. The version is bumped when verbs are added, so a client can tell why.
public enum ControlWire {
    /// The protocol version this build speaks (highest). 2 added the `intake` verb.
    public static let version = 2
    /// The oldest client version this build's server still answers.
    public static let minimumVersion = 1
    /// Longest line a server accepts from a client, newline excluded. Longer lines are
    /// answered with `bad_request` and the connection is closed.
    public static let maxRequestLineBytes = 64 * 1024
    /// Longest line a client accepts from a server, newline excluded (job records carry
    /// prompts, so responses are allowed to be larger than requests).
    public static let maxResponseLineBytes = 1024 * 1024
    /// Socket path used when neither `--socket` nor `DIFFUSIOND_SOCKET` names one.
    public static let defaultSocketPath = "/run/diffusiond/control.sock"
    /// Environment variable that overrides ``defaultSocketPath`` for clients.
    public static let socketEnvironmentVariable = "DIFFUSIOND_SOCKET"
}
