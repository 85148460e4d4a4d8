import Foundation
import Daemon

FileHandle.standardError.write(Data("<3>diffusiond: not built yet\n".utf8))
exit(70)
