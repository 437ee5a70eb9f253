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

/// What a verified job pays on a devstack with a lying node: every replica that ran and was
/// found right, never the wrong one; the rest of the hold goes back.
@Suite("Ledger with verification (separate processes)", .serialized)
struct LedgerVerificationTests {
    @Test func aWrongReplicaIsNeverPaid() async throws {
        let folder = try Paths.temporaryDirectory("cod-ledger-verify")
        let prices = folder.appendingPathComponent("prices.yaml")
        try Data("Start: 1000\nPerCPUSecond: 50\n".utf8).write(to: prices)
        let stack = try await DevstackProcess.start(
            dataDirectory: folder.appendingPathComponent("data"), computes: 3,
            extraArguments: ["--bad-nodes", "1", "--bad-mode", "corrupt", "--price-list", prices.path])
        defer { stack.stop() }
        let bad = try #require(try await stack.client.nodes().first { $0.info.labels["devstack-index"] == "2" }?.info.nodeID)
        #expect(try await stack.cod("account", "deposit", "user:admin", "100000000").status == 0)
        let input = try #require(try await VerificationEndToEndTests.inputs(stack, count: 1).first)
        let run = try await stack.cod(
            "wasm", "run", try Paths.fixture("files"), "-i", "ipfs://\(input.cid):/inputs", "--verify", "verified", "--replicas", "3",
            "--quorum", "2", "--timeout", "60", "--id-only")
        #expect(run.status == 0, "\(run.stderr)")
        let id = jobID(run)
        let job = try await VerificationEndToEndTests.waitForEnd(stack, id)
        #expect(job.state.stateType == .completed, "\(job.state.message)")
        // The job is accepted on the first two agreeing results; a later one is compared too.
        var executions = try await stack.client.executions(id)
        let deadline = Date().addingTimeInterval(60)
        while executions.contains(where: { !$0.computeState.stateType.isTerminal || ($0.computeState.stateType == .completed && $0.verdict == nil) }),
            Date() < deadline
        {
            try await Task.sleep(for: .milliseconds(200))
            executions = try await stack.client.executions(id)
        }
        let entries = try await stack.client.ledger(job: id)
        let charged = Dictionary(entries.filter { $0.kind == .charge }.compactMap { e in e.executionID.map { ($0, e) } }, uniquingKeysWith: { a, _ in a })
        let lie = try #require(executions.first { $0.nodeID == bad }, "every node runs one of the 3 replicas")
        #expect(lie.verdict == .invalid && lie.cost != nil)
        #expect(charged[lie.id] == nil, "the wrong replica was paid: \(entries)")
        for execution in executions where execution.verdict == .valid {
            #expect(charged[execution.id]?.amount == execution.cost && charged[execution.id]?.to == "node:\(execution.nodeID)")
        }
        #expect(try await stack.client.account("node:\(bad)").balance == 0)
        let held = entries.filter { $0.kind == .hold }.reduce(Int64(0)) { $0 + $1.amount }
        let spent = entries.filter { [.charge, .release].contains($0.kind) }.reduce(Int64(0)) { $0 + $1.amount }
        #expect(held == spent && held > 0, "\(entries)")
        let cost = try await stack.cod("job", "cost", id)
        #expect(cost.stdout.contains("Ledger: held"), "\(cost.stdout)")
    }
}

/// A service on priced nodes pays for the time its execution holds its resources, period by
/// period, and is stopped when its hold cannot pay the next one; one with no Budget.Max is
/// refused, since nothing bounds what it may cost.
@Suite("Ledger for long-running jobs (separate processes)", .serialized)
struct LedgerServiceTests {
    @Test func aServiceIsChargedByPeriodAndStoppedWhenItsHoldRunsOut() async throws {
        let folder = try Paths.temporaryDirectory("cod-ledger-service")
        let prices = folder.appendingPathComponent("prices.yaml")
        // Half a core at 1000 per CPU second: 500 a second, 3000 of budget is about 6 s.
        try Data("PerCPUSecond: 1000\n".utf8).write(to: prices)
        let stack = try await DevstackProcess.start(
            dataDirectory: folder.appendingPathComponent("data"), computes: 1,
            extraArguments: ["--engines", "wasm", "--price-list", prices.path, "--charge-interval", "1"])
        defer { stack.stop() }
        #expect(try await stack.cod("account", "deposit", "user:admin", "1000000").status == 0)
        let dry = try await stack.cod("wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=300", "--cpu", "0.5", "--dry-run")
        var spec = try #require(try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])
        spec["Type"] = "service"
        let file = folder.appendingPathComponent("service.json")
        try JSONSerialization.data(withJSONObject: spec).write(to: file)
        let unbounded = try await stack.cod("job", "run", file.path, "--wait=false", "--id-only")
        #expect(unbounded.status != 0 && unbounded.stderr.contains("Budget.Max"), "\(unbounded.stderr)")
        spec["Budget"] = ["Max": 3000]
        try JSONSerialization.data(withJSONObject: spec).write(to: file)
        let run = try await stack.cod("job", "run", file.path, "--wait=false", "--id-only")
        #expect(run.status == 0, "\(run.stderr)")
        let id = jobID(run)
        let job = try await VerificationEndToEndTests.waitForEnd(stack, id)
        #expect(job.state.stateType == .stopped && job.state.message.contains("hold ran out"), "\(job.state)")
        // Settled once its execution ended: charges by period, the rest released.
        var entries: [LedgerEntry] = []
        for _ in 0..<100 {
            entries = try await stack.client.ledger(job: id)
            // The last part period may take what the stop left: then nothing is released.
            if try await stack.client.account("hold:\(id)").balance == 0 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(try await stack.client.account("hold:\(id)").balance == 0)
        let charges = entries.filter { $0.kind == .charge }
        let charged = charges.reduce(Int64(0)) { $0 + $1.amount }
        #expect(charges.count >= 3 && charges.filter { $0.period > 0 }.map(\.period) == Array(1...Int64(charges.filter { $0.period > 0 }.count)), "\(charges)")
        #expect(charged <= 3000 && charged >= 1500, "\(charges)")
        #expect(entries.first { $0.kind == .hold }?.amount == 3000)
        #expect((entries.first { $0.kind == .release }?.amount ?? 0) == 3000 - charged, "\(entries)")
        let execution = try #require(try await stack.client.executions(id).first)
        #expect(try await stack.client.account("node:\(execution.nodeID)").balance == charged)
        #expect(try await stack.client.account("user:admin").balance == 1_000_000 - charged)
    }
}
