/// Comparing and handling secrets (join tokens, keys) without leaking them.
public enum Secrets {
    /// Whether two secrets are equal, in time that depends only on their lengths, so a caller
    /// cannot learn a token byte by byte from how fast it is refused.
    public static func equal(_ given: String, _ expected: String) -> Bool {
        let a = Array(given.utf8)
        let b = Array(expected.utf8)
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0 && a.count == b.count
    }
}
