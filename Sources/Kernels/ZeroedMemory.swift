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
/// Blocks of at least `hugePageThreshold` bytes are also advised MADV_HUGEPAGE (unless the
/// caller says `hugePages: false`, as the activation arena does), so that Linux
/// backs their 2 MiB-aligned stretches with huge pages where transparent huge pages are in
/// `madvise` mode (in `always` mode they get them anyway): every evaluation streams each
/// layer's weights from memory once, a 59 MB convolution weight row block by row block, and on
/// 4 KiB pages each of those blocks likely starts on a page the TLB has not seen (the UNet and
/// the text encoder ran faster in most alternating rounds: docs/BENCHMARKS.md, 2026-12-06 (huge
/// pages)).
enum ZeroedMemory {
    /// Blocks this large or larger are mapped (256 KiB: glibc's largest default threshold).
    static let mappingThreshold = 256 << 10
    /// Blocks this large or larger are advised MADV_HUGEPAGE (one huge page's size).
    static let hugePageThreshold = 2 << 20

    /// `bytes` (≥ 1) zeroed bytes, 64-byte aligned; `what` names the caller in the message
    /// when memory is exhausted (not recoverable for a tensor engine). `hugePages: false`
    /// keeps a large block off huge pages (a buffer used only in part).
    static func allocate(_ bytes: Int, what: String, hugePages: Bool = true) -> UnsafeMutableRawPointer {
        let bytes = max(bytes, 1)
        if bytes >= mappingThreshold {
            let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let p, p != MAP_FAILED else {
                preconditionFailure("\(what): cannot map \(bytes) bytes: \(String(cString: strerror(errno)))")
            }
            if hugePages && bytes >= hugePageThreshold { _ = madvise(p, bytes, MADV_HUGEPAGE) }
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
