import Foundation
import Wire

/// Single-use challenges for compute nodes' hellos: each is 256 random bits, good for one
/// hello within a minute. At most `capacity` are outstanding (the oldest go first), so asking
/// for challenges without using them costs the orchestrator bounded memory.
actor ChallengeBook {
    private var issued: [String: ContinuousClock.Instant] = [:]
    private var order: [String] = []
    let lifetime: Duration
    let capacity: Int

    init(lifetime: Duration = .seconds(60), capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    func issue() -> String {
        let challenge = Base64URL.encode(Credentials.randomBytes(32))
        if order.count >= capacity {
            let dropped = order.prefix(order.count - capacity + 1)
            for old in dropped { issued[old] = nil }
            order.removeFirst(dropped.count)
        }
        issued[challenge] = .now + lifetime
        order.append(challenge)
        return challenge
    }

    /// Whether `challenge` was issued and has not expired nor been used; it is used up either way.
    func consume(_ challenge: String) -> Bool {
        guard let expiry = issued.removeValue(forKey: challenge) else { return false }
        if let index = order.firstIndex(of: challenge) { order.remove(at: index) }
        return ContinuousClock.now < expiry
    }
}
