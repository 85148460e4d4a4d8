#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ControlClient

// Ctrl-C during `watch`: end the redrawn line and exit 0.
signal(SIGINT) { _ in
    let newline: [UInt8] = [0x0A]
    _ = write(1, newline, 1)
    _exit(0)
}
signal(SIGPIPE, SIG_IGN)
exit(DiffusionCtl.run(Array(CommandLine.arguments.dropFirst()),
                      environment: ProcessInfo.processInfo.environment,
                      output: .standard))
