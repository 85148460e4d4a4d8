/// What to tell someone the socket or the inbox refused, from the group that owns it: the one
/// place both the control-socket and the submit errors get their advice from.
enum AccessAdvice {
    /// `"join the group 'diffusiond' (…)"` for a service's group. A path owned by group `root`
    /// is a development setup (a daemon run by hand as root), where joining root's group is
    /// the wrong advice: say to run as the daemon's user or to give the daemon a reachable path.
    static func text(group: String?, path: String) -> String {
        guard let group else { return "ask an administrator for access to \(path)" }
        if group == "root" {
            return "\(path) belongs to group 'root' (a daemon started by hand as root, not the installed service): "
                + "run diffusionctl as root or as the daemon's user, or start the daemon with --socket and --inbox in a folder whose group you are in"
        }
        return "join the group '\(group)' (e.g. `sudo usermod -aG \(group) $USER`, then log in again)"
    }
}
