#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// uid/gid to name lookups (getpwuid_r / getgrgid_r), falling back to the number as text.
public enum AccountNames {
    /// User name of `uid`, or the uid in decimal when it has no passwd entry.
    public static func userName(_ uid: UInt32) -> String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        let rc = getpwuid_r(uid, &entry, &buffer, buffer.count, &result)
        guard rc == 0, result != nil, let name = entry.pw_name else { return String(uid) }
        return String(cString: name)
    }

    /// Group name of `gid`, or the gid in decimal when it has no group entry.
    public static func groupName(_ gid: UInt32) -> String {
        var entry = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        let rc = getgrgid_r(gid, &entry, &buffer, buffer.count, &result)
        guard rc == 0, result != nil, let name = entry.gr_name else { return String(gid) }
        return String(cString: name)
    }
}
