import Foundation

/// Zeroed, 64-byte-aligned memory for tensors and weights: one home for how storage is
/// allocated and given back.
///
/// Blocks of at least `mappingThreshold` bytes are anonymous mappings of their own (zero
/// pages from the kernel, no memset pass) and go back to the system the moment they are
/// freed. From malloc, a model's many large weights fragment the heap: glibc raises its mmap
/// threshold after the first large free (the fused Q/K/V copies free their parts), so later
/// weights land on the heap between freed holes that are never returned, and an SDXL UNet's
/// 9.8 GB of fp32 weights held 11.3 GB of RSS.
///
/// Blocks of at least `hugePageThreshold` bytes start on a 2 MiB boundary and are also advised
/// MADV_HUGEPAGE (unless the caller says `hugePages: false`, as the activation arena does), so
/// that Linux backs them with huge pages (all but a last part-filled 2 MiB) where transparent
/// huge pages are in `madvise` mode (in `always` mode they get them anyway): every evaluation
/// streams each layer's weights from memory once, a 59 MB convolution weight row block by row
/// block, and on 4 KiB pages each of those blocks likely starts on a page the TLB has not seen
/// (the UNet and the text encoder ran faster in most alternating rounds: docs/BENCHMARKS.md,
/// 2026-12-06 (huge pages)). Before the 2 MiB start (2026-12-07), the text encoder had 380 of its
/// 511 MB on huge pages, after it 442 MB.
enum ZeroedMemory {
    /// Blocks this large or larger are mapped (256 KiB: glibc's largest default threshold).
    static let mappingThreshold = 256 << 10
    /// Blocks this large or larger are advised MADV_HUGEPAGE and start on a multiple of it (one
    /// huge page's size).
    static let hugePageThreshold = 2 << 20
    /// The system page size less one (4 KiB pages: 4095), for rounding a mapping's length.
    private static let pageMask = UInt(max(4096, sysconf(Int32(_SC_PAGESIZE)))) - 1

    /// `bytes` (≥ 1) zeroed bytes, 64-byte aligned; `what` names the caller in the message
    /// when memory is exhausted (not recoverable for a tensor engine). `hugePages: false`
    /// keeps a large block off huge pages (a buffer used only in part).
    static func allocate(_ bytes: Int, what: String, hugePages: Bool = true) -> UnsafeMutableRawPointer {
        let bytes = max(bytes, 1)
        if bytes >= mappingThreshold {
            let huge = hugePages && bytes >= hugePageThreshold
            // A huge-page block is mapped with 2 MiB to spare and trimmed to start on a 2 MiB
            // boundary: Linux backs only whole aligned 2 MiB stretches with huge pages, and a
            // block starting anywhere else left its first stretch (up to 2 MiB) on 4 KiB pages.
            let slack = huge ? hugePageThreshold : 0
            let mapped = mmap(nil, bytes + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let mapped, mapped != MAP_FAILED else {
                preconditionFailure("\(what): cannot map \(bytes) bytes: \(String(cString: strerror(errno)))")
            }
            if !huge { return mapped }
            let start = UInt(bitPattern: mapped), end = start + UInt(bytes + slack)
            let aligned = (start + UInt(slack - 1)) & ~UInt(slack - 1)
            let used = aligned + (UInt(bytes) + pageMask) & ~pageMask
            let p = mapped + Int(aligned - start)
            if aligned > start { munmap(mapped, Int(aligned - start)) }
            if end > used { munmap(p + Int(used - aligned), Int(end - used)) }
            _ = madvise(p, bytes, MADV_HUGEPAGE)
            return p
        }
        var raw: UnsafeMutableRawPointer?
        let rc = posix_memalign(&raw, 64, bytes)
        guard rc == 0, let raw else {
            preconditionFailure("\(what): cannot allocate \(bytes) bytes (posix_memalign rc \(rc))")
        }
        memset(raw, 0, bytes)
        return raw
    }

    /// Gives back a block `allocate` returned for the same `bytes`.
    static func free(_ p: UnsafeMutableRawPointer, bytes: Int) {
        let bytes = max(bytes, 1)
        if bytes >= mappingThreshold { munmap(p, bytes) } else { Foundation.free(p) }
    }
}
