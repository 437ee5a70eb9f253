import Foundation
import JobSpec
import Models
import Testing

@Suite("Prices")
struct PricingTests {
    func rate(_ text: String) -> Rate {
        var problem: String?
        return Rate.parse(text, problem: &problem)!
    }

    /// Rates as written, exactly: no floating point between the text and the sum.
    @Test(arguments: [
        ("0", Int64(0)), ("12", 12_000_000), ("16.6667", 16_666_700), ("0.000001", 1), ("1000000000", 1_000_000_000_000_000),
        ("007.5", 7_500_000),
    ])
    func ratesAreReadExactly(_ text: String, _ pico: Int64) {
        #expect(rate(text).picoCredits == pico)
        #expect(rate(rate(text).description).picoCredits == pico)
    }

    @Test(arguments: ["-1", "1e3", "1.0000001", "", ".5", "5.", "1000000001", "99999999999999999999", "0x10", "１"])
    func impossibleRatesAreRefused(_ text: String) {
        var problem: String?
        #expect(Rate.parse(text, problem: &problem) == nil, "\(text)")
        #expect(problem != nil)
    }

    /// The price function, a case per counter: each rounded up to the millisecond (fetched
    /// bytes exactly), summed, charged rounded up to the micro-credit, never under Minimum.
    static let priceCases: [(Usage, Int64)] = [
        (Usage(wallSeconds: 1), 1000),  // start only
        (Usage(wallSeconds: 1, cpuSeconds: 2.0), 1100),  // 2 s x 50
        (Usage(wallSeconds: 1, cpuSeconds: 0.0001), 1001),  // rounded up to 1 ms: 0.05, charged 1
        (Usage(wallSeconds: 1, memoryGiBSeconds: 3), 1030),
        (Usage(wallSeconds: 1, gpuSeconds: 1.5), 2500),
        (Usage(wallSeconds: 1, bytesReadFromPeers: 1 << 29, bytesReadFromOutside: 1 << 29), 3000),  // 1 GiB fetched
        (Usage(wallSeconds: 1, bytesReadLocally: 1 << 40), 1000),  // local reads are free
        (Usage(wallSeconds: 1, cpuSeconds: nil, peakMemoryBytes: nil), 1000),  // not measured, not charged
    ]

    @Test(arguments: priceCases)
    func priceFunction(_ usage: Usage, _ expected: Int64) {
        let list = PriceList(
            start: rate("1000"), perCPUSecond: rate("50"), perGiBSecond: rate("10"), perGPUSecond: rate("1000"), perGiBFetched: rate("2000"),
            minimum: rate("500"))
        #expect(list.cost(of: usage).microCredits == expected, "\(usage)")
    }

    @Test func minimumAndLargeFiguresHold() {
        let list = PriceList(perCPUSecond: rate("1"), minimum: rate("250"))
        #expect(list.cost(of: Usage(wallSeconds: 1, cpuSeconds: 0.1)).microCredits == 250)
        #expect(list.cost(of: Usage(wallSeconds: 1, cpuSeconds: 1000)).microCredits == 1000)
        // The largest rates and counters stay exact (128-bit sums), and a huge multiple saturates.
        let dear = PriceList(
            start: Rate.maximum, perCPUSecond: Rate.maximum, perGiBSecond: Rate.maximum, perGPUSecond: Rate.maximum,
            perGiBFetched: Rate.maximum, minimum: Rate.maximum)
        let most = Usage(
            wallSeconds: 1, cpuSeconds: 1e300, memoryGiBSeconds: 1e300, gpuSeconds: 1e300, bytesReadFromPeers: .max, bytesReadFromOutside: .max)
        #expect(dear.cost(of: most).microCredits > 0)
        #expect(dear.cost(of: most).microCredits(times: .max) == .max)
    }

    /// AWS's own worked example: 1 GiB functions running 28 ms each, 60 million times, at
    /// $0.0000166667 per GB-second, cost $28 (Lambda bills per 1 ms; credits stand for dollars).
    @Test func lambdasWorkedExample() {
        let lambda = PriceList(perGiBSecond: rate("16.6667"))  // micro-credits per GiB-second
        let one = Usage(wallSeconds: 0.028, memoryGiBSeconds: 1 * 0.028)
        let total = lambda.cost(of: one).microCredits(times: 60_000_000)
        #expect(total == 28_000_056)  // 28.000056 credits: 28 within the rate's rounding
        // Priced as one aggregate the same; a run of 27.2 ms is billed as 28 ms.
        #expect(lambda.cost(of: Usage(wallSeconds: 1_680_000, memoryGiBSeconds: 1_680_000)).microCredits == 28_000_056)
        #expect(lambda.cost(of: Usage(wallSeconds: 0.0272, memoryGiBSeconds: 0.0272)).microCredits(times: 60_000_000) == 28_000_056)
    }

    @Test func priceListsParseExactlyAndSayWhatIsWrong() throws {
        let list = try PriceListParser.parse("""
            Currency: credit
            Start: 1000
            PerCPUSecond: 50
            PerGiBSecond: 16.6667
            Minimum: 10
            """)
        #expect(list.perGiBSecond.picoCredits == 16_666_700 && list.start == rate("1000") && list.perGPUSecond.picoCredits == 0)
        // JSON round trip keeps every rate.
        let json = try JSONEncoder().encode(list)
        #expect(try JSONDecoder().decode(PriceList.self, from: json) == list)
        #expect(try PriceListParser.parse(String(decoding: json, as: UTF8.self)) == list)

        let bad = """
            Currency: dollar
            PerCPUSecond: -3
            PerGiBSecnd: 4
            Start: 1.1234567
            Minimum: [1]
            """
        #expect {
            try PriceListParser.parse(bad)
        } throws: { error in
            let message = (error as? CodError)?.message ?? ""
            return ["Currency must be credit", "PerCPUSecond must be a number", "PerGiBSecnd is not a price list field",
                    "Start has more than six decimal places", "Minimum must be a single value"].allSatisfy { message.contains($0) }
        }
        for text in ["", "- 1\n- 2", "Start: [", "Start: 1\nStart: 2"] {
            #expect(throws: CodError.self, "\(text)") { try PriceListParser.parse(text) }
        }
    }
}
