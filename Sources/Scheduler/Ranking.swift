import Models

/// The one ranking every placement uses: the highest score among the nodes that fit wins.
/// In order of weight: data locality (the share of the input the node holds), nodes that have
/// not failed this work already, for verified jobs the node's reputation, fewer executions of
/// this job (spread), more free capacity, and a seeded jitter that breaks ties the same way for the same evaluation.
struct Ranking {
    /// Share of the partition's input bytes the node holds, 0...1 (1 when there is no data).
    var locality: Double = 0
    /// Executions of this job the node already runs (or gets in this plan).
    var jobLoad: Int = 0
    /// Whether an earlier attempt of the same work ran there.
    var alreadyTried: Bool = false
    /// What the node has left after its allocations.
    var free: Resources
    /// For a verified job: how the node's results for this engine and artifact fared.
    var reputation: NodeReputation?
    /// What a minute of the requested resources costs there (``Pricing/referenceCost``), and
    /// how much the job's pricing strategy weighs it.
    var price: Int64 = 0
    var strategy: Pricing.Strategy?

    /// Score lost per doubling of price: under Cheapest more than an earlier failure there or
    /// any reputation, under Balanced about as much as spreading the job; never more than
    /// data locality.
    static func priceWeight(_ strategy: Pricing.Strategy?) -> Double {
        switch strategy {
        case .cheapest?: return 1500
        case .balanced?: return 20
        case .fastest?, nil: return 0
        }
    }

    func score(jitter rng: inout SplitMix64) -> Double {
        var score = locality * 100_000
        if alreadyTried { score -= 1000 }
        // Reliable nodes first for replicas and retries: a run of valid results counts up to
        // 50, each invalid result against it more.
        if let reputation {
            score += Double(min(reputation.consecutiveValid, 50)) * 4 - Double(min(reputation.invalid, 100)) * 20
                - Double(min(reputation.errors + reputation.timeouts, 100)) * 5
        }
        score -= Double(jobLoad) * 10
        // By doublings of price (its bit length), so a price twice another loses one weight.
        if price > 0 { score -= Double(Int64.bitWidth - price.leadingZeroBitCount) * Self.priceWeight(strategy) }
        score += free.cpu + Double(free.memory) / 1e10
        return score + Double(rng.next() % 1000) / 1e6
    }

    /// The best of `candidates` (node, ranking) or nil when there are none.
    static func best<Node>(_ candidates: [(Node, Ranking)], rng: inout SplitMix64) -> Node? {
        var best: (node: Node, score: Double)?
        for (node, ranking) in candidates {
            let score = ranking.score(jitter: &rng)
            if best == nil || score > best!.score { best = (node, score) }
        }
        return best?.node
    }
}
