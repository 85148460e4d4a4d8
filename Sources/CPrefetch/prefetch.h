// CPU hints Swift has no spelling for: software prefetch for the weight-streaming kernels, and
// the spin-wait pause of the thread pool's polling. Header only: the static inline functions
// are inlined into the Swift callers.
#ifndef DIFFUSIOND_PREFETCH_H
#define DIFFUSIOND_PREFETCH_H

/// Asks for the cache line holding `p` to be brought into L2 (x86: prefetcht1), for reading.
static inline void diffusiond_prefetch_l2(const void *p) { __builtin_prefetch(p, 0, 2); }

/// A spin-wait hint (x86: PAUSE): the core yields its pipeline to its sibling and saves power
/// while a thread polls a flag another core will set.
static inline void diffusiond_spin_pause(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

#endif
