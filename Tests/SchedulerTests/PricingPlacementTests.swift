@testable import CodTestKit
import Foundation
import Models
import Scheduler
import Testing

/// Price in placement: MaxPrice makes dearer nodes infeasible with the reason; the strategy
/// decides how much a cheaper node is preferred; data locality still comes first.
@Suite("Pricing in placement")
struct PricingPlacementTests {
    func node(_ id: String, cpuRate: Int64?) -> NodeCandidate {
        var node = Fixture.node(id)
        if let cpuRate { node.state.info.computeNodeInfo.priceList = PriceList(perCPUSecond: Rate(microCredits: cpuRate)) }
        return node
    }

    func job(_ pricing: Pricing?, count: Int = 1) -> Job {
        var job = Fixture.job(count: count, cpu: "1")
        job.pricing = pricing
        return job
    }

    /// Where each of `runs` single-partition evaluations (different seeds) places the job.
    func placements(_ job: Job, nodes: [NodeCandidate], runs: Int = 40) -> [String: Int] {
        var counts: [String: Int] = [:]
        for run in 0..<runs {
            var input = Fixture.input(job, nodes: nodes)
            input.evaluation.id = "v-\(run)"
            for execution in BatchScheduler().schedule(input).newExecutions { counts[execution.nodeID, default: 0] += 1 }
        }
        return counts
    }

    @Test func maxPriceRefusesDearerNodesWithTheReason() throws {
        let limit = Pricing(strategy: .fastest, maxPrice: PriceList(perCPUSecond: Rate(microCredits: 100)))
        let nodes = [node("n-dear", cpuRate: 500), node("n-fair", cpuRate: 100), node("n-free", cpuRate: nil)]
        let counts = placements(job(limit), nodes: nodes)
        #expect(counts["n-dear"] == nil && (counts["n-fair"] ?? 0) + (counts["n-free"] ?? 0) == 40, "\(counts)")
        // Nowhere within it: the job fails, naming the node's price and the limit.
        let plan = BatchScheduler().schedule(Fixture.input(job(limit), nodes: [node("n-dear", cpuRate: 500)]))
        #expect(plan.jobState?.stateType == .failed)
        #expect(plan.jobState?.message.contains("its price PerCPUSecond 500 is over the job's 100 micro-credits (Pricing.MaxPrice)") == true,
                "\(plan.jobState?.message ?? "")")
        // A MaxPrice field left out is no limit.
        let other = Pricing(maxPrice: PriceList(perGiBSecond: Rate(microCredits: 1)))
        #expect(placements(job(other), nodes: [node("n-dear", cpuRate: 500)], runs: 1)["n-dear"] == 1)
    }

    @Test func cheapestPrefersTheCheaperNodeAndFastestIgnoresPrice() {
        let nodes = [node("n-dear", cpuRate: 800), node("n-cheap", cpuRate: 100)]
        #expect(placements(job(Pricing(strategy: .cheapest)), nodes: nodes)["n-cheap"] == 40)
        // Without pricing, or with Fastest, price plays no part: the seeded ties spread them.
        for pricing in [nil, Pricing(strategy: .fastest)] {
            let counts = placements(job(pricing), nodes: nodes)
            #expect((counts["n-dear"] ?? 0) > 5 && (counts["n-cheap"] ?? 0) > 5, "\(String(describing: pricing)): \(counts)")
        }
    }

    @Test func pricingStrategiesParseAndRefuseUnknownOnes() throws {
        let decoded = try JSONDecoder().decode(Pricing.self, from: Data(#"{"Strategy": "cheapest", "MaxPrice": {"PerCPUSecond": 12.5}}"#.utf8))
        #expect(decoded.strategy == .cheapest && decoded.maxPrice?.perCPUSecond.picoCredits == 12_500_000)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Pricing.self, from: Data(#"{"Strategy": "Free"}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Pricing.self, from: Data(#"{"MaxPrice": {"Start": -1}}"#.utf8)) }
    }
}
