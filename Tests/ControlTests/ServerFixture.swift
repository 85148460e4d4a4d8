#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ControlProtocol
import ControlClient
import Daemon

/// A real ControlServer on a socket in a fresh temp directory, with an ``InTestQueue``.
final class ServerFixture {
    let directory: String
    let socketPath: String
    let queue = InTestQueue()
    let server: ControlServer

    init() throws {
        directory = NSTemporaryDirectory() + "ctl-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        socketPath = directory + "/run/control.sock"
        server = ControlServer(configuration: .init(socketPath: socketPath, allowSocketActivation: false),
                               handler: queue, log: { _, _ in })
        try server.start()
    }

    func tearDown() {
        server.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs diffusionctl in-process against this server; returns (status, stdout, stderr).
    func ctl(_ arguments: String...) -> (Int32, String, String) {
        ctl(arguments)
    }

    func ctl(_ arguments: [String]) -> (Int32, String, String) {
        var out = ""
        var err = ""
        let status = DiffusionCtl.run(["--socket", socketPath] + arguments, environment: [:],
                                      output: CtlOutput(out: { out += $0 }, err: { err += $0 }, isTerminal: false))
        return (status, out, err)
    }
}
