import Daemon
import Foundation

exit(DiffusiondCommand.main(Array(CommandLine.arguments.dropFirst())))
