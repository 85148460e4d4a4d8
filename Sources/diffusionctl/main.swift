#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ControlClient

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.contains("watch") {
    // Ctrl-C is how `watch` ends: finish the redrawn line and exit 0.
    signal(SIGINT) { _ in
        let newline: [UInt8] = [0x0A]
        _ = write(1, newline, 1)
        _exit(0)
    }
}
signal(SIGPIPE, SIG_IGN)
exit(DiffusionCtl.run(arguments, environment: ProcessInfo.processInfo.environment, output: .standard))
