// Software prefetch for the weight-streaming kernels (Swift has no prefetch intrinsic).
// Header only: the static inline functions are inlined into the Swift callers.
#ifndef DIFFUSIOND_PREFETCH_H
#define DIFFUSIOND_PREFETCH_H

/// Asks for the cache line holding `p` to be brought into L2 (x86: prefetcht1), for reading.
static inline void diffusiond_prefetch_l2(const void *p) { __builtin_prefetch(p, 0, 2); }

#endif
