import Daemon
import Foundation
import Kernels

// OpenBLAS's fastest kernels for this CPU, before anything else starts (BLASCore).
BLASCore.reexecWithFasterKernelsIfNeeded()
exit(DiffusiondCommand.main(Array(CommandLine.arguments.dropFirst())))
