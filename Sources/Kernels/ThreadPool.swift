import Foundation
import CBLAS
import CPrefetch
import Synchronization

/// Persistent worker threads that split a range of work over all cores.
///
/// The calling thread takes part as worker 0; `threadCount - 1` pthreads wait on a
/// condition variable between jobs, so a `parallelFor` costs a wake-up, not a thread
/// start. Chunks are handed out from a shared counter (dynamic scheduling).
///
/// Before sleeping, a thread polls for up to `spinMicroseconds` (PAUSE instructions between
/// looks, the clock read every 16 of them): a worker for the next job, the caller for the
/// workers' last chunks. A time, not a count of PAUSEs: one PAUSE took 47 ns on the Xeons the
/// count of 2000 was measured on and 14.5 ns on a later one, where 2000 of them (29 µs) ended
/// the polling inside an evaluation's gaps: the text encoder's first evaluation after half a
/// second idle took 79 ms there, 62.5 ms polling 300 µs by the clock (docs/BENCHMARKS.md,
/// 2026-12-07 (spin by time)). A model's operators follow one another with gaps of
/// microseconds, and waking a sleeping core costs tens of them on a virtual machine (a
/// `parallelFor` 45–46 µs asleep against 1.0–2.6 µs polling, `diffusion-bench kernels --only
/// dispatch`), which the text encoder at batch 1 and the UNet at 256² paid several hundred
/// times an evaluation (docs/BENCHMARKS.md, 2026-12-07 (spin)). Between jobs the threads sleep.
///
/// OpenBLAS and this pool never compete for cores: creating a pool sets OpenBLAS to one
/// thread, and every GEMM-heavy kernel splits its GEMMs over this pool itself (each
/// worker calls single-threaded `cblas_sgemm` on its own tile). So the process runs
/// exactly `threadCount` busy threads. Set `DIFFUSION_THREADS` to override the default.
///
/// A `parallelFor` issued from inside a worker runs inline on that worker. Calls from
/// two outside threads at once are serialized (each runs as worker 0, so worker 0's scratch
/// is only ever one call's), and so are their `withSharedScratch` kernels.
public final class ThreadPool: @unchecked Sendable {
    /// The pool every kernel uses unless given another one.
    public static let shared = ThreadPool(threadCount: ThreadPool.defaultThreadCount())

    /// Threads that run work, counting the caller.
    public let threadCount: Int

    /// `DIFFUSION_THREADS` if set and positive, else the number of active processors.
    public static func defaultThreadCount() -> Int {
        if let s = ProcessInfo.processInfo.environment["DIFFUSION_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Longest a thread polls before it sleeps, in microseconds (see the type's documentation).
    public var spinMicroseconds: Int { core.spinNanoseconds / 1000 }

    /// `DIFFUSION_SPIN` if set to a whole number of microseconds ≥ 0 (0: sleep at once, as
    /// before 2026-12-07), else 300.
    public static func defaultSpinMicroseconds() -> Int {
        if let s = ProcessInfo.processInfo.environment["DIFFUSION_SPIN"], let n = Int(s), n >= 0 { return n }
        return 300
    }

    private let core: PoolCore
    private var threads: [pthread_t] = []
    private let soloLock = NSLock()
    private var solos: [ThreadPool]?

    /// Starts `threadCount - 1` worker threads (the caller is the last one), which poll for
    /// up to `spinMicroseconds` before they sleep.
    public init(threadCount: Int, spinMicroseconds: Int = ThreadPool.defaultSpinMicroseconds()) {
        self.threadCount = max(1, threadCount)
        core = PoolCore(threadCount: self.threadCount, spinNanoseconds: max(0, spinMicroseconds) * 1000)
        openblas_set_num_threads(1)
        for w in 1..<self.threadCount {
            let box = Unmanaged.passRetained(WorkerStart(core: core, index: w))
            var tid = pthread_t()
            let rc = pthread_create(&tid, nil, { arg in
                guard let arg else { return nil }
                let start = Unmanaged<WorkerStart>.fromOpaque(arg).takeRetainedValue()
                start.core.workerLoop(index: start.index)
                return nil
            }, box.toOpaque())
            if rc == 0 { threads.append(tid) } else { box.release() }
        }
        core.workerThreads = threads.count
    }

    deinit {
        core.shutDown()
        for t in threads { pthread_join(t, nil) }
    }

    /// Runs `body` over `range`, split into chunks of at least `grain` items spread over
    /// all threads. `body` receives a sub-range and the worker index (0..<threadCount),
    /// which selects that worker's `scratch`. Returns when every chunk is done.
    public func parallelFor(_ range: Range<Int>, grain: Int = 1, _ body: (Range<Int>, Int) -> Void) {
        let n = range.count
        if n <= 0 { return }
        let g = max(1, grain)
        if let w = PoolCore.currentWorker(of: core) {
            body(range, w)  // nested: run inline on the worker that asked
            return
        }
        // One outside caller at a time, inline runs included: each is worker 0.
        pthread_mutex_lock(&core.submitMutex)
        defer { pthread_mutex_unlock(&core.submitMutex) }
        let previous = pthread_getspecific(PoolCore.tlsKey)
        defer { pthread_setspecific(PoolCore.tlsKey, previous) }
        core.setCurrentWorker(0)
        if threads.isEmpty || n <= g {
            body(range, 0)
            return
        }
        // Aim at ~4 chunks per thread for balance, never smaller than `grain`.
        let size = max(g, (n + threadCount * 4 - 1) / (threadCount * 4))
        withoutActuallyEscaping(body) { escapable in
            core.run(escapable, range: range, chunkSize: size)
        }
    }

    /// Whether the calling thread is running work for this pool (a nested call would run inline).
    public var isInsideWorker: Bool { PoolCore.currentWorker(of: core) != nil }

    /// Runs `body` with a buffer of at least `count` floats shared by one whole kernel call
    /// (for example transformed weights or packed keys that every worker reads, filled by one
    /// `parallelFor` and read by the next). Only outside worker bodies. The buffer is the
    /// pool's one shared buffer (it grows only when asked for more), held for the whole of
    /// `body`: a second outside thread's kernel waits, so neither reads the other's data nor
    /// a buffer freed by the other's growth.
    public func withSharedScratch<T>(count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> T) rethrows -> T {
        precondition(!isInsideWorker, "ThreadPool.withSharedScratch: not available inside a worker")
        pthread_mutex_lock(&core.sharedMutex)
        defer { pthread_mutex_unlock(&core.sharedMutex) }
        return try body(core.shared.reserve(count))
    }

    /// A per-worker buffer of at least `count` floats, 64-byte aligned. It grows (and
    /// allocates) only when a larger size is first asked for, so steady-state calls do
    /// not allocate. Valid until the same worker asks again with a larger count.
    public func scratch(worker: Int, count: Int) -> UnsafeMutablePointer<Float> {
        core.scratch[worker].reserve(count)
    }

    /// One pool of a single thread (the caller's) per thread of this one, made on first use:
    /// for work that splits into as many independent wholes as there are threads (a batch's
    /// sequences through a whole text encoder), each run from its own item of one
    /// `parallelFor` of this pool on its own solo pool. Its kernels then hand nothing to
    /// another core between operators, and keep their own scratch (and may take the shared
    /// scratch, which a nested call on this pool may not). Item i uses `soloPools[i]`, so no
    /// two items share one.
    public var soloPools: [ThreadPool] {
        soloLock.lock()
        defer { soloLock.unlock() }
        if let solos { return solos }
        let made = (0..<threadCount).map { _ in ThreadPool(threadCount: 1) }
        solos = made
        return made
    }

    /// A second per-worker buffer, only for widening 16-bit weight blocks right before
    /// their sgemm (`GEMM.gemm(…, a: WeightOperand …)`), so a kernel that already holds
    /// `scratch` (im2col tiles) can widen weights without moving it. Same growth rules.
    public func weightScratch(worker: Int, count: Int) -> UnsafeMutablePointer<Float> {
        core.weightScratch[worker].reserve(count)
    }
}

/// Shared state between the pool's owner and its worker threads. Workers hold it
/// strongly, so it outlives the `ThreadPool` until every worker has exited.
private final class PoolCore: @unchecked Sendable {
    var mutex = pthread_mutex_t()
    var workCond = pthread_cond_t()
    var doneCond = pthread_cond_t()
    /// Held by the outside caller for the whole of a `parallelFor` (see `run`).
    var submitMutex = pthread_mutex_t()
    /// Held for the whole of a `withSharedScratch` kernel; always taken before `submitMutex`.
    var sharedMutex = pthread_mutex_t()
    var generation = 0
    var pending = 0
    var nextChunk = 0
    var chunkCount = 0
    var chunkSize = 0
    var rangeStart = 0
    var rangeEnd = 0
    var job: ((Range<Int>, Int) -> Void)?
    var shuttingDown = false
    var workerThreads = 0
    let scratch: [ScratchBuffer]
    let weightScratch: [ScratchBuffer]
    let shared = ScratchBuffer()
    var markers: [WorkerMarker] = []
    /// `generation` and the workers still on the current job, readable without the mutex: a
    /// worker about to sleep polls the first, the caller the second, for up to `spinNanoseconds`.
    /// `pending` stays beside `running`: a worker lowers it under the mutex only once its copy of
    /// the job's closure is gone, and `parallelFor`'s `withoutActuallyEscaping` traps if the
    /// caller returns while a worker still holds it (waiting on `running` alone did).
    let publishedGeneration = Atomic<Int>(0)
    let running = Atomic<Int>(0)
    let spinNanoseconds: Int

    init(threadCount: Int, spinNanoseconds: Int) {
        self.spinNanoseconds = spinNanoseconds
        scratch = (0..<threadCount).map { _ in ScratchBuffer() }
        weightScratch = (0..<threadCount).map { _ in ScratchBuffer() }
        pthread_mutex_init(&mutex, nil)
        pthread_mutex_init(&submitMutex, nil)
        pthread_mutex_init(&sharedMutex, nil)
        pthread_cond_init(&workCond, nil)
        pthread_cond_init(&doneCond, nil)
        for w in 0..<threadCount { markers.append(WorkerMarker(core: self, index: w)) }
    }

    func shutDown() {
        pthread_mutex_lock(&mutex)
        shuttingDown = true
        pthread_cond_broadcast(&workCond)
        pthread_mutex_unlock(&mutex)
    }

    /// Runs `body`'s chunks on every worker; the caller holds `submitMutex`.
    func run(_ body: @escaping (Range<Int>, Int) -> Void, range: Range<Int>, chunkSize size: Int) {
        pthread_mutex_lock(&mutex)
        job = body
        rangeStart = range.lowerBound
        rangeEnd = range.upperBound
        chunkSize = size
        chunkCount = (range.count + size - 1) / size
        nextChunk = 0
        pending = workerThreads
        running.store(workerThreads, ordering: .releasing)
        generation &+= 1
        publishedGeneration.store(generation, ordering: .releasing)
        pthread_cond_broadcast(&workCond)
        pthread_mutex_unlock(&mutex)

        runChunks(body, worker: 0)

        // The workers' chunks usually end within microseconds of the caller's.
        poll { running.load(ordering: .acquiring) > 0 }
        pthread_mutex_lock(&mutex)
        while pending > 0 { pthread_cond_wait(&doneCond, &mutex) }
        job = nil
        pthread_mutex_unlock(&mutex)
    }

    /// Pauses while `waiting()` holds, for at most `spinNanoseconds` (the caller then sleeps on
    /// a condition variable if it still must wait). The clock (a vDSO call, ~20 ns) is read
    /// once every 16 PAUSEs.
    @inline(__always)
    private func poll(_ waiting: () -> Bool) {
        if spinNanoseconds == 0 || !waiting() { return }
        let deadline = DispatchTime.now().uptimeNanoseconds &+ UInt64(spinNanoseconds)
        while true {
            for _ in 0..<16 {
                diffusiond_spin_pause()
                if !waiting() { return }
            }
            if DispatchTime.now().uptimeNanoseconds >= deadline { return }
        }
    }

    func runChunks(_ body: (Range<Int>, Int) -> Void, worker: Int) {
        while true {
            pthread_mutex_lock(&mutex)
            let c = nextChunk
            nextChunk += 1
            let total = chunkCount, size = chunkSize, lo = rangeStart, hi = rangeEnd
            pthread_mutex_unlock(&mutex)
            if c >= total { return }
            let a = lo + c * size
            body(a..<min(hi, a + size), worker)
        }
    }

    func workerLoop(index: Int) {
        setCurrentWorker(index)
        var seen = 0
        pthread_mutex_lock(&mutex)
        while true {
            if generation == seen && !shuttingDown && spinNanoseconds > 0 {
                // The next job usually comes within microseconds; shutDown waits at most the spin.
                pthread_mutex_unlock(&mutex)
                poll { publishedGeneration.load(ordering: .acquiring) == seen }
                pthread_mutex_lock(&mutex)
            }
            while generation == seen && !shuttingDown { pthread_cond_wait(&workCond, &mutex) }
            if shuttingDown { break }
            seen = generation
            let body = job
            pthread_mutex_unlock(&mutex)
            if let body { runChunks(body, worker: index) }
            running.subtract(1, ordering: .releasing)  // after the chunks' writes: the caller may return at once
            pthread_mutex_lock(&mutex)
            pending -= 1
            if pending == 0 { pthread_cond_signal(&doneCond) }
        }
        pthread_mutex_unlock(&mutex)
        pthread_setspecific(PoolCore.tlsKey, nil)
    }

    // Thread-local "which pool and worker am I": lets nested calls run inline.
    static let tlsKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    func setCurrentWorker(_ index: Int) {
        // Markers are owned by the core; the slot holds an unretained pointer.
        pthread_setspecific(PoolCore.tlsKey, Unmanaged.passUnretained(markers[index]).toOpaque())
    }

    static func currentWorker(of core: PoolCore) -> Int? {
        guard let raw = pthread_getspecific(tlsKey) else { return nil }
        let marker = Unmanaged<WorkerMarker>.fromOpaque(raw).takeUnretainedValue()
        return marker.core === core ? marker.index : nil
    }
}

private final class WorkerStart {
    let core: PoolCore
    let index: Int
    init(core: PoolCore, index: Int) { self.core = core; self.index = index }
}

private final class WorkerMarker {
    unowned(unsafe) let core: PoolCore
    let index: Int
    init(core: PoolCore, index: Int) { self.core = core; self.index = index }
}

/// Growable 64-byte-aligned float buffer owned by one worker.
final class ScratchBuffer {
    private var storage: TensorStorage?
    func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if let s = storage, s.capacity >= count { return s.base }
        let s = TensorStorage(capacity: count)
        storage = s
        return s.base
    }
}
