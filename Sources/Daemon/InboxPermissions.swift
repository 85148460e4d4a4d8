import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether the daemon can claim (rename out of the inbox) files that other users drop.
///
/// In a directory with the sticky bit (`chmod +t`, as `systemd/diffusiond.tmpfiles` makes the
/// inbox, so that users cannot remove each other's files), rename(2) and unlink(2) of an
/// entry are allowed only to the file's owner, the directory's owner, or a process with
/// CAP_FOWNER (Linux `may_delete()` / `check_sticky()`; see the EPERM cases of rename(2)).
/// So a sticky inbox works when the daemon's user owns it, and fails for other users' files
/// (EPERM) when it does not.
enum InboxPermissions {
    /// CAP_FOWNER from linux/capability.h.
    static let capFOwner = 3

    /// Why files other users drop cannot be claimed, or nil when they can.
    static func claimProblem(inbox: String, mode: mode_t, owner: uid_t, daemonUID: uid_t, hasCapFOwner: Bool) -> String? {
        guard mode & S_ISVTX != 0, owner != daemonUID, !hasCapFOwner else { return nil }
        return "the inbox \(inbox) has the sticky bit and belongs to uid \(owner), not to the daemon's uid \(daemonUID): "
            + "files dropped by other users cannot be renamed out of it (EPERM), so they stay in the inbox; "
            + "make the daemon's user own the inbox (chown), or drop the sticky bit"
    }

    /// The start-up check: `claimProblem` for the inbox as it is on disk.
    static func check(inbox: URL) -> String? {
        var st = stat()
        guard stat(inbox.path, &st) == 0 else { return nil }
        return claimProblem(inbox: inbox.path, mode: st.st_mode, owner: st.st_uid, daemonUID: geteuid(),
                            hasCapFOwner: effectiveCapabilities().map { $0 & (1 << capFOwner) != 0 } ?? (geteuid() == 0))
    }

    /// Why a claim failed with EPERM: the sticky rule, when it applies to this file.
    static func claimFailure(inbox: URL, file: URL) -> String? {
        var dir = stat(), st = stat()
        guard stat(inbox.path, &dir) == 0, lstat(file.path, &st) == 0, dir.st_mode & S_ISVTX != 0,
              st.st_uid != geteuid(), dir.st_uid != geteuid() else { return nil }
        return "the inbox is sticky, and neither the file (uid \(st.st_uid)) nor the inbox (uid \(dir.st_uid)) "
            + "belongs to the daemon (uid \(geteuid())); make the daemon's user own the inbox"
    }

    /// `CapEff` of /proc/self/status, or nil where it cannot be read.
    static func effectiveCapabilities() -> UInt64? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let hex = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last else { return nil }
        return UInt64(hex, radix: 16)
    }
}
