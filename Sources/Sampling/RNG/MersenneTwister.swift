/// MT19937, seeded like torch's `at::mt19937` (ATen/core/MT19937RNGEngine.h):
/// `init_with_uint32(seed)` keeps only the low 32 bits of the 64-bit seed.
struct MersenneTwister {
    private static let stateSize = 624
    private static let shift = 397
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for i in 1..<Self.stateSize {
            let previous = state[i - 1]
            state[i] = 1_812_433_253 &* (previous ^ (previous >> 30)) &+ UInt32(i)
        }
        index = Self.stateSize
    }

    /// Next tempered 32-bit output (torch's `random()`).
    mutating func next() -> UInt32 {
        if index >= Self.stateSize { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// torch's `random64()`: two draws, the first one is the high word.
    mutating func next64() -> UInt64 {
        let high = UInt64(next())
        let low = UInt64(next())
        return (high << 32) | low
    }

    private mutating func twist() {
        let n = Self.stateSize
        for k in 0..<n {
            let y = (state[k] & 0x8000_0000) | (state[(k + 1) % n] & 0x7FFF_FFFF)
            var value = state[(k + Self.shift) % n] ^ (y >> 1)
            if y & 1 != 0 { value ^= 0x9908_B0DF }
            state[k] = value
        }
        index = 0
    }
}
