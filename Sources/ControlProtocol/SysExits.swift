/// Exit statuses of sysexits(3), for `diffusiond` and `diffusionctl` alike (their man pages
/// list which each uses). Values are those of `<sysexits.h>`; never change one.
public enum SysExits {
    /// 0: success.
    public static let ok: Int32 = 0
    /// 64 (`EX_USAGE`): bad command line, or a request the daemon rejects as malformed.
    public static let usage: Int32 = 64
    /// 65 (`EX_DATAERR`): bad input data (a job file, a change the job's state does not allow).
    public static let dataError: Int32 = 65
    /// 66 (`EX_NOINPUT`): an input file, or a job, does not exist.
    public static let noInput: Int32 = 66
    /// 69 (`EX_UNAVAILABLE`): a service is unavailable (the daemon is not running).
    public static let unavailable: Int32 = 69
    /// 70 (`EX_SOFTWARE`): an internal error, or a job that failed.
    public static let software: Int32 = 70
    /// 73 (`EX_CANTCREAT`): an output file or folder cannot be created.
    public static let cantCreate: Int32 = 73
    /// 74 (`EX_IOERR`): an input/output error.
    public static let ioError: Int32 = 74
    /// 75 (`EX_TEMPFAIL`): a temporary failure; trying again later may work.
    public static let tempFail: Int32 = 75
    /// 76 (`EX_PROTOCOL`): the other side broke the protocol.
    public static let protocolError: Int32 = 76
    /// 77 (`EX_NOPERM`): permission denied.
    public static let noPermission: Int32 = 77
    /// 78 (`EX_CONFIG`): a configuration error.
    public static let config: Int32 = 78
}
