import Foundation
public import Models

/// A zone from the system's zone database (IANA names such as `Europe/Lisbon`), with its
/// offset changes read once for 1900-2200 so the schedule loop does no lookups per tick.
public struct SystemZone: ZoneRules {
    public let identifier: String
    private let zone: TimeZone
    /// Instants at which the offset changes, ascending, and the offset from each on.
    private let changes: [Int64]
    private let offsets: [Int64]
    private let initial: Int64

    static let first: Int64 = -2_208_988_800  // 1900-01-01
    static let last: Int64 = 7_258_118_400  // 2200-01-01

    /// The zone named `identifier`; nil when the system does not know it. Only IANA names
    /// (and `UTC`): abbreviations such as `EST` or `CET` are ambiguous and refused.
    public init?(_ identifier: String) {
        guard identifier == "UTC" || (identifier.contains("/") && !identifier.hasPrefix("/") && !identifier.contains("..")),
            identifier.utf8.count <= 64, let zone = TimeZone(identifier: identifier)
        else { return nil }
        self.identifier = identifier
        self.zone = zone
        var changes: [Int64] = []
        var offsets: [Int64] = []
        var cursor = Date(timeIntervalSince1970: TimeInterval(Self.first))
        while let next = zone.nextDaylightSavingTimeTransition(after: cursor), next.timeIntervalSince1970 < TimeInterval(Self.last),
            changes.count < 10_000
        {
            let instant = Int64(next.timeIntervalSince1970.rounded(.down))
            changes.append(instant)
            offsets.append(Int64(zone.secondsFromGMT(for: next)))
            cursor = next
        }
        self.changes = changes
        self.offsets = offsets
        self.initial = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(Self.first))))
    }

    public func offset(at instant: Int64) -> Int64 {
        guard instant >= Self.first, instant < Self.last else {
            return Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant))))
        }
        let count = changesUpTo(instant)
        return count == 0 ? initial : offsets[count - 1]
    }

    public func nextTransition(after instant: Int64) -> Int64? {
        guard instant >= Self.first, instant < Self.last else {
            return zone.nextDaylightSavingTimeTransition(after: Date(timeIntervalSince1970: TimeInterval(instant)))
                .map { Int64($0.timeIntervalSince1970.rounded(.down)) }
        }
        let count = changesUpTo(instant)
        return count < changes.count ? changes[count] : nil
    }

    /// How many of the changes come at or before `instant` (a binary search).
    private func changesUpTo(_ instant: Int64) -> Int {
        var low = 0
        var high = changes.count
        while low < high {
            let middle = (low + high) / 2
            if changes[middle] <= instant { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
