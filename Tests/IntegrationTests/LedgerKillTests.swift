@testable import CodTestKit
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Foundation
import Models
import Testing
import Wire

/// The ledger against separate processes: 200 submissions race for a balance that covers 50
/// while the orchestrator is SIGKILLed and restarted in the middle. However the race and the
/// kill fall, no more than 50 jobs are stored, each with exactly one hold, and the balance
/// and the holds add up to what was deposited.
@Suite("Ledger under a killed orchestrator (separate processes)", .serialized)
struct LedgerKillTests {
    /// A PUT of the job spec as the admin; the status, or nil when the connection failed.
    static func submit(_ cluster: ServeCluster, _ spec: Data) async -> Int? {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(cluster.port)/api/v1/orchestrator/jobs")!, timeoutInterval: 30)
        request.httpMethod = "PUT"
        request.httpBody = spec
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(cluster.adminKey ?? "")", forHTTPHeaderField: "Authorization")
        guard let (_, response) = try? await URLSession.shared.data(for: request) else { return nil }
        return (response as? HTTPURLResponse)?.statusCode
    }

    @Test func twoHundredSubmissionsAgainstFiftyHoldsSurviveAKill() async throws {
        let cluster = try ServeCluster()
        let prices = cluster.base.appendingPathComponent("prices.yaml")
        // Only a start price: every execution's worst case is exactly 1000, so a job holds its
        // four attempts' worth, 4000, whatever it asks for.
        try Data("Start: 1000\n".utf8).write(to: prices)
        var orchestrator = try cluster.orchestrator()
        let compute = try cluster.compute(0, ["--engines", "wasm", "--price-list", prices.path])
        defer {
            for process in [orchestrator, compute] where process.isRunning { process.interrupt() }
        }
        try await cluster.waitForNodes(1)
        let hold: Int64 = 4000
        // Jobs that run for minutes: none ends, so no hold is released during the race.
        let spec = AccessControlTests.spec(namespace: "default", env: ["SECONDS": "300"])
        #expect(await Self.submit(cluster, spec) == 402)
        let deposit = try await cluster.cli("account", "deposit", "user:admin", String(50 * hold))
        #expect(deposit.status == 0, "\(deposit.stderr)")

        var statuses: [Int?] = []
        await withTaskGroup(of: Int?.self) { group in
            for _ in 0..<200 { group.addTask { await Self.submit(cluster, spec) } }
            // The kill lands once 20 have answered, while the rest are in flight (each commit
            // waits for the disk, so 180 take far longer than it takes to kill a process).
            for await status in group {
                statuses.append(status)
                if statuses.count == 20 { cluster.kill9(orchestrator) }
            }
        }
        orchestrator = try cluster.orchestrator()
        try await cluster.waitForNodes(1)
        // What the kill cut off is sent again, to the restarted orchestrator.
        let lost = statuses.filter { $0 == nil }.count
        #expect(lost > 0, "the kill came after every submission had its answer")
        var again: [Int?] = []
        for _ in 0..<lost { again.append(await Self.submit(cluster, spec)) }
        let all = statuses.compactMap { $0 } + again.compactMap { $0 }
        #expect(Set(all).isSubset(of: [200, 402]), "\(all)")
        let accepted = all.filter { $0 == 200 }.count

        let jobs = try await cluster.cli("job", "list", "--limit", "1000", "--output", "json")
        let stored = try JSONDecoder().decode(ListResponse<Job>.self, from: Data(jobs.stdout.utf8)).items
        let ledger = try await cluster.cli("ledger", "list", "--output", "json")
        let entries = try JSONDecoder().decode(ListResponse<LedgerEntry>.self, from: Data(ledger.stdout.utf8)).items
        let holds = entries.filter { $0.kind == .hold }
        // Every acknowledged submission was stored; none beyond the balance; each with one hold.
        #expect(accepted <= stored.count && stored.count == 50, "accepted \(accepted), stored \(stored.count), lost \(lost)")
        #expect(Set(holds.compactMap(\.jobID)) == Set(stored.map(\.id)) && holds.count == stored.count)
        #expect(holds.allSatisfy { $0.amount == hold && $0.from == "user:admin" })
        let account = try await cluster.cli("account", "balance", "user:admin", "--output", "json")
        let balance = try JSONDecoder().decode(Account.self, from: Data(account.stdout.utf8))
        #expect(balance.balance == 0 && balance.held == 50 * hold, "\(balance)")
        #expect(entries.filter { $0.kind == .deposit }.map(\.amount) == [50 * hold])
    }
}
