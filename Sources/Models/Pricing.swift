/// A price in micro-credits, to six decimal places: rates may be finer than a micro-credit
/// (AWS Lambda's memory rate is 16.6667 micro-dollars per GB-second), while what is charged
/// is whole micro-credits. Held as an integer of pico-credits; no floating point in sums.
public struct Rate: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var picoCredits: Int64

    public init(picoCredits: Int64) { self.picoCredits = picoCredits }
    public init(microCredits: Int64) { self.picoCredits = microCredits * 1_000_000 }

    /// The most a rate may be: a thousand credits (so exact sums fit in 128 bits).
    public static let maximum = Rate(microCredits: 1_000_000_000)

    public static func < (lhs: Rate, rhs: Rate) -> Bool { lhs.picoCredits < rhs.picoCredits }

    /// `12`, `16.6667`: micro-credits as written in a price list.
    public var description: String {
        let whole = picoCredits / 1_000_000
        var fraction = String(picoCredits % 1_000_000)
        guard fraction != "0" else { return String(whole) }
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(whole).\(fraction)"
    }

    /// Parses micro-credits written as decimal digits with at most six after the point;
    /// nil, with `problem` set, for anything else (signs, exponents, more decimals, too large).
    public static func parse(_ text: String, problem: inout String?) -> Rate? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let digits = { (part: Substring) in !part.isEmpty && part.allSatisfy { $0.isASCII && $0.isNumber } }
        guard let whole = parts.first, digits(whole), parts.count == 1 || digits(parts[1]) else {
            problem = "must be a number of micro-credits of 0 or more, e.g. 12 or 16.6667, got \(text)"
            return nil
        }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard fraction.count <= 6 else {
            problem = "has more than six decimal places of a micro-credit: \(text)"
            return nil
        }
        guard whole.count <= 10, let wholeValue = Int64(whole), let fractionValue = Int64(fraction + String(repeating: "0", count: 6 - fraction.count)),
            wholeValue * 1_000_000 + fractionValue <= maximum.picoCredits
        else {
            problem = "is more than \(maximum.picoCredits / 1_000_000) micro-credits (a thousand credits): \(text)"
            return nil
        }
        return Rate(picoCredits: wholeValue * 1_000_000 + fractionValue)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text: String
        if let integer = try? container.decode(Int64.self) {
            text = String(integer)
        } else if let string = try? container.decode(String.self) {
            text = string
        } else {
            // The shortest decimal that reads back as this Double, e.g. 16.6667.
            text = "\(try container.decode(Double.self))"
        }
        var problem: String?
        guard let rate = Rate.parse(text, problem: &problem) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: problem ?? "invalid rate")
        }
        self = rate
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if picoCredits % 1_000_000 == 0 {
            try container.encode(picoCredits / 1_000_000)
        } else {
            try container.encode(description)
        }
    }
}

/// A compute node's prices (`cod serve --compute --price-list FILE`): what one execution costs
/// from its metered ``Usage``. Every rate is in micro-credits; currency is `credit`, Cod's own
/// unit (settlement in money is left to a plug-in).
public struct PriceList: Codable, Sendable, Hashable {
    public var currency: String
    /// Per execution.
    public var start: Rate
    public var perCPUSecond: Rate
    /// Per GiB of memory held for a second.
    public var perGiBSecond: Rate
    public var perGPUSecond: Rate
    /// Per GiB of input fetched over the network (from peers or outside).
    public var perGiBFetched: Rate
    /// The least an execution costs.
    public var minimum: Rate

    public init(
        currency: String = "credit", start: Rate = Rate(picoCredits: 0), perCPUSecond: Rate = Rate(picoCredits: 0),
        perGiBSecond: Rate = Rate(picoCredits: 0), perGPUSecond: Rate = Rate(picoCredits: 0), perGiBFetched: Rate = Rate(picoCredits: 0),
        minimum: Rate = Rate(picoCredits: 0)
    ) {
        self.currency = currency
        self.start = start
        self.perCPUSecond = perCPUSecond
        self.perGiBSecond = perGiBSecond
        self.perGPUSecond = perGPUSecond
        self.perGiBFetched = perGiBFetched
        self.minimum = minimum
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case currency = "Currency", start = "Start", perCPUSecond = "PerCPUSecond", perGiBSecond = "PerGiBSecond"
        case perGPUSecond = "PerGPUSecond", perGiBFetched = "PerGiBFetched", minimum = "Minimum"
    }

    /// The keys a price list may have.
    public static let keys = CodingKeys.allCases.map(\.rawValue)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let zero = Rate(picoCredits: 0)
        currency = try c.decodeIfPresent(String.self, forKey: .currency) ?? "credit"
        start = try c.decodeIfPresent(Rate.self, forKey: .start) ?? zero
        perCPUSecond = try c.decodeIfPresent(Rate.self, forKey: .perCPUSecond) ?? zero
        perGiBSecond = try c.decodeIfPresent(Rate.self, forKey: .perGiBSecond) ?? zero
        perGPUSecond = try c.decodeIfPresent(Rate.self, forKey: .perGPUSecond) ?? zero
        perGiBFetched = try c.decodeIfPresent(Rate.self, forKey: .perGiBFetched) ?? zero
        minimum = try c.decodeIfPresent(Rate.self, forKey: .minimum) ?? zero
    }

    /// What an execution with this usage costs. Metered quantities are rounded up first, as
    /// Lambda bills: CPU, memory and GPU time to the millisecond; fetched bytes are exact. A
    /// quantity the node did not measure costs nothing: a node that cannot meter cannot charge
    /// for it.
    public func cost(of usage: Usage) -> Cost {
        func milli(_ value: Double?) -> Int128 {
            guard let value, value.isFinite, value > 0 else { return 0 }
            // At most 10^13 ms (317 years): bounded, so the exact sum fits.
            return Int128(min((value * 1000 - 1e-9).rounded(.up), 1e13))
        }
        let gib = Int128(1) << 30
        // Over a common denominator of 1000 x 2^30 pico-credits, so every part is exact.
        let fetched = Int128(usage.bytesReadFromPeers) + Int128(usage.bytesReadFromOutside)
        var numerator = Int128(start.picoCredits) * 1000 * gib
        numerator += milli(usage.cpuSeconds) * Int128(perCPUSecond.picoCredits) * gib
        numerator += milli(usage.memoryGiBSeconds) * Int128(perGiBSecond.picoCredits) * gib
        numerator += milli(usage.gpuSeconds) * Int128(perGPUSecond.picoCredits) * gib
        numerator += fetched * Int128(perGiBFetched.picoCredits) * 1000
        return Cost(numerator: numerator, denominator: 1000 * gib * 1_000_000, minimum: minimum)
    }

    /// Each rate at most `ceiling`'s: what a node's price script may ask, below its list.
    public func capped(by ceiling: PriceList) -> PriceList {
        PriceList(
            currency: ceiling.currency, start: min(start, ceiling.start), perCPUSecond: min(perCPUSecond, ceiling.perCPUSecond),
            perGiBSecond: min(perGiBSecond, ceiling.perGiBSecond), perGPUSecond: min(perGPUSecond, ceiling.perGPUSecond),
            perGiBFetched: min(perGiBFetched, ceiling.perGiBFetched), minimum: min(minimum, ceiling.minimum))
    }

    /// Why the list cannot be used as it is, or nil.
    public var problem: String? {
        currency == "credit" ? nil : "Currency must be credit (Cod's own unit; money is settled outside), got \(currency)"
    }
}

/// An exact cost: a fraction of micro-credits, charged rounded up.
public struct Cost: Sendable, Hashable {
    let numerator: Int128
    let denominator: Int128
    let minimum: Rate

    /// What is charged: whole micro-credits, rounded up, and at least the list's minimum.
    public var microCredits: Int64 { microCredits(times: 1) }

    /// The charge for `count` executions alike, priced together (so no rounding per run).
    public func microCredits(times count: Int64) -> Int64 {
        let (total, overflow) = numerator.multipliedReportingOverflow(by: Int128(max(count, 0)))
        if overflow { return Int64.max }
        let rounded = (total + denominator - 1) / denominator
        let least = (Int128(minimum.picoCredits) * Int128(count) + 999_999) / 1_000_000
        return Int64(clamping: max(rounded, least))
    }
}

/// How a job weighs price when it is placed (`Pricing` in the job spec; absent: price plays
/// no part).
public struct Pricing: Codable, Sendable, Hashable {
    public enum Strategy: String, Codable, Sendable, CaseIterable {
        /// The cheapest node that fits, unless another holds the data.
        case cheapest = "Cheapest"
        /// Price counts, less than free capacity and spread.
        case balanced = "Balanced"
        /// Price plays no part in the ranking (MaxPrice still holds).
        case fastest = "Fastest"
    }

    public var strategy: Strategy
    /// The most the job pays per unit: a node whose list asks more for any of these is not
    /// used (nodes that publish no price list charge nothing and always qualify).
    public var maxPrice: PriceList?

    public init(strategy: Strategy = .balanced, maxPrice: PriceList? = nil) {
        self.strategy = strategy
        self.maxPrice = maxPrice
    }

    enum CodingKeys: String, CodingKey { case strategy = "Strategy", maxPrice = "MaxPrice" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let text = try c.decodeIfPresent(String.self, forKey: .strategy) ?? Strategy.balanced.rawValue
        guard let strategy = Strategy.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }) else {
            throw DecodingError.dataCorruptedError(
                forKey: .strategy, in: c, debugDescription: "Strategy must be Cheapest, Balanced or Fastest, got \(text)")
        }
        self.strategy = strategy
        maxPrice = try c.decodeIfPresent(PriceList.self, forKey: .maxPrice)
    }

    /// Why a node's list is over the job's MaxPrice, or nil when it is within it.
    public func refusal(of list: PriceList?) -> String? {
        guard let maxPrice, let list else { return nil }
        let rates: [(String, Rate, Rate)] = [
            ("Start", list.start, maxPrice.start), ("PerCPUSecond", list.perCPUSecond, maxPrice.perCPUSecond),
            ("PerGiBSecond", list.perGiBSecond, maxPrice.perGiBSecond), ("PerGPUSecond", list.perGPUSecond, maxPrice.perGPUSecond),
            ("PerGiBFetched", list.perGiBFetched, maxPrice.perGiBFetched), ("Minimum", list.minimum, maxPrice.minimum),
        ]
        // A MaxPrice field left out (0) is no limit.
        for (name, asked, most) in rates where most.picoCredits > 0 && asked > most {
            return "its price \(name) \(asked) is over the job's \(most) micro-credits (Pricing.MaxPrice)"
        }
        return nil
    }

    /// What a minute of the requested resources costs on a node with `list`, in micro-credits:
    /// the yardstick placement compares nodes' prices by before any usage is known.
    public static func referenceCost(of list: PriceList?, requested: Resources) -> Int64 {
        guard let list else { return 0 }
        let usage = Usage(
            wallSeconds: 60, cpuSeconds: max(requested.cpu, 0.001) * 60, memoryGiBSeconds: Double(requested.memory) / Double(1 << 30) * 60,
            gpuSeconds: Double(requested.gpu) * 60)
        return list.cost(of: usage).microCredits
    }
}
