/// Generates Bacalhau-style IDs (`j-`, `e-`, `v-`, `n-` followed by a UUID) from an injected
/// random number generator, so core code stays deterministic under test.
public struct IDGenerator<RNG: RandomNumberGenerator> {
    public var rng: RNG

    public init(rng: RNG) {
        self.rng = rng
    }

    public mutating func uuid() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<2 {
            let word = rng.next()
            for byte in 0..<8 { bytes[index * 8 + byte] = UInt8(truncatingIfNeeded: word >> (byte * 8)) }
        }
        return uuidString(bytes, version: 4)
    }

    public mutating func jobID() -> String { "j-" + uuid() }
    public mutating func executionID() -> String { "e-" + uuid() }
    public mutating func evaluationID() -> String { "v-" + uuid() }
    public mutating func nodeID() -> String { "n-" + uuid() }
}

/// A small, fast, seedable generator (SplitMix64) for deterministic choices in core code.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    /// Seeds from a string, e.g. an evaluation ID, with FNV-1a.
    public init(seedString: String) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in seedString.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0100_0000_01b3
        }
        state = hash
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// 16 bytes as an RFC 4122 UUID of `version` (4: random, 5: derived from a name), in the
/// 8-4-4-4-12 form.
public func uuidString(_ bytes: [UInt8], version: UInt8) -> String {
    precondition(bytes.count >= 16, "a UUID needs 16 bytes")
    var bytes = Array(bytes.prefix(16))
    bytes[6] = (bytes[6] & 0x0F) | (version << 4)
    bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
    let digits = Array("0123456789abcdef")
    let hex = bytes.map { String([digits[Int($0 >> 4)], digits[Int($0 & 0xF)]]) }
    return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-" + hex[8..<10].joined()
        + "-" + hex[10..<16].joined()
}

/// Shortens IDs for tables: `j-1f2e3d4c-...` becomes `j-1f2e3d4c`.
public func shortID(_ id: String) -> String {
    guard let dash = id.firstIndex(of: "-") else { return id }
    let rest = id[id.index(after: dash)...]
    return String(id[...dash]) + String(rest.prefix(8))
}
