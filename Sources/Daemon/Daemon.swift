import CInotifyTools
// Module Daemon: intake, queue + journal, worker, control server, sd_notify, signals, logging.
func _inotifyLinkCheck() -> Int32 { inotifytools_error() }
