import Foundation
import ControlClient

FileHandle.standardError.write(Data("diffusionctl: not built yet\n".utf8))
exit(70)
