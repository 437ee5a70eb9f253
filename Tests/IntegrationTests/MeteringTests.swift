@testable import CodTestKit
import ContentAddressing
import Foundation
import Models
import Testing
import Wire

/// Metering through a devstack with every engine: what `job describe` and the signed receipt
/// say an execution used, against what the program itself and the kernel saw.
@Suite("Metering every engine (separate processes)", .serialized)
struct MeteringTests {
    /// Runs a job to its end and returns its one execution.
    func execution(_ stack: DevstackProcess, _ arguments: [String]) async throws -> Execution {
        let run = try await stack.cod(arguments)
        #expect(run.status == 0, "\(arguments): \(run.stderr)")
        let job = try await describe(stack, jobID(run))
        let execution = try #require(job.executions?.items.first { $0.computeState.stateType == .completed }, "\(job.job.state.message)")
        return execution
    }

    /// The children's CPU seconds a shell's `times` printed (its second line, user + system).
    func childrenCPU(_ stdout: String) -> Double? {
        guard let line = stdout.split(separator: "\n").last(where: { $0.contains("m") && $0.contains("s") }) else { return nil }
        let values = line.split(separator: " ").compactMap { field -> Double? in
            let parts = field.split(separator: "m")
            guard parts.count == 2, let minutes = Double(parts[0]), let seconds = Double(parts[1].dropLast()) else { return nil }
            return minutes * 60 + seconds
        }
        return values.count == 2 ? values[0] + values[1] : nil
    }

    @Test func aBusyLoopAtHalfACoreIsMeteredByEveryEngine() async throws {
        let stack = try await EngineStack.shared.get()
        // Two seconds of a busy loop under a 0.5 CPU limit: about 1.0 CPU second, never more
        // than the limit allows; the shell's own account of its children agrees.
        let loop = "timeout 2 sh -c 'while :; do :; done'; times"
        let runs: [(String, [String])] = [
            ("process", ["exec", "--id-only", "--cpu", "0.5", "--", "sh", "-c", loop]),
            ("docker", ["docker", "run", "--id-only", "--cpu", "0.5", PodmanService.image, "--", "sh", "-c", loop]),
            ("wasm", ["wasm", "run", "--id-only", "--cpu", "0.5", try Paths.fixture("busy"), "-e", "SECONDS=2"]),
        ]
        for (engine, arguments) in runs {
            let execution = try await execution(stack, arguments)
            let usage = try #require(execution.usage, "\(engine): no usage")
            let cpu = try #require(usage.cpuSeconds, "\(engine): CPU not measured (\(usage.meteredBy ?? "-"))")
            // A loaded machine may give the loop little CPU: what is checked is that the meter
            // agrees with the kernel's own count and never exceeds the limit.
            #expect(cpu > 0, "\(engine): \(cpu) CPU s for a 2 s busy loop")
            #expect(cpu <= usage.wallSeconds * 0.5 * 1.15 + 0.1, "\(engine): \(cpu) CPU s in \(usage.wallSeconds) s at 0.5 CPU")
            if engine != "wasm" {
                let own = try #require(childrenCPU(execution.runOutput?.stdout ?? ""), "\(engine): \(execution.runOutput?.stdout ?? "")")
                #expect(abs(cpu - own) <= own * 0.15 + 0.1, "\(engine): metered \(cpu) CPU s, the shell counted \(own)")
            }
            #expect(usage.meteredBy != nil && usage.gpuSeconds == 0)
            // The signed receipt carries the same figures.
            let receipts = try await stack.cod("job", "receipts", execution.jobID, "--output", "json")
            let stored = try JSONDecoder().decode(JobReceiptsResponse.self, from: Data(receipts.stdout.utf8)).executions
            let text = try #require(stored.first?.envelope, "\(engine): no receipt")
            let bytes = try #require(Data(base64Encoded: text))
            let envelope = try DSSEEnvelope.decode(bytes)
            let payload = try #require(Data(base64Encoded: envelope.payload))
            let receipt = try JSONDecoder().decode(ExecutionReceipt.self, from: payload)
            #expect(receipt.usage.cpuSeconds == cpu && receipt.usage.bytesPublished == usage.bytesPublished, "\(engine)")
        }
    }

    @Test func aHundredMebibyteAllocationShowsInThePeak() async throws {
        let stack = try await EngineStack.shared.get()
        let copy = ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=100M count=1 2>&1"]
        let runs: [(String, [String])] = [
            ("process", ["exec", "--id-only", "--memory", "512Mb", "--"] + copy),
            ("docker", ["docker", "run", "--id-only", "--memory", "512Mb", PodmanService.image, "--"] + copy),
            ("wasm", ["wasm", "run", "--id-only", "--memory", "512Mb", try Paths.fixture("hog"), "-e", "MEGABYTES=100"]),
        ]
        for (engine, arguments) in runs {
            let execution = try await execution(stack, arguments)
            let usage = try #require(execution.usage, "\(engine): no usage")
            let peak = try #require(usage.peakMemoryBytes, "\(engine): memory not measured (\(usage.meteredBy ?? "-"))")
            #expect(peak >= 100 << 20, "\(engine): peak \(peak) bytes for a 100 MiB buffer")
            #expect(peak < 512 << 20, "\(engine): peak \(peak) bytes above the limit")
            #expect((usage.memoryGiBSeconds ?? 0) > 0 && usage.bytesPublished > 0, "\(engine): \(usage)")
        }
    }
}

@Suite("Price lists through a devstack (separate processes)", .serialized)
struct PriceListTests {
    /// An operator's price script quotes each execution below the published list (capped by
    /// it); one that hangs, prints nonsense or tries to write on the host gets the list (or its
    /// own price) and leaves the host as it was.
    @Test func aPriceScriptQuotesBelowTheListAndCannotTouchTheHost() async throws {
        let folder = try Paths.temporaryDirectory("cod-price-script")
        let prices = folder.appendingPathComponent("prices.yaml")
        try Data("Start: 1000\nPerCPUSecond: 1000\n".utf8).write(to: prices)
        let marker = folder.appendingPathComponent("escaped")
        let script = folder.appendingPathComponent("price.sh")
        try Data("""
            #!/bin/sh
            request=$(cat)
            case "$request" in
              *'"mode":"slow"'*) sleep 30 ;;
              *'"mode":"garbage"'*) echo "a lot, frankly" ;;
              *'"mode":"escape"'*) echo pwned > \(marker.path) 2>/dev/null; touch \(marker.path) 2>/dev/null; echo 7 ;;
              *) echo '{"Start": 100, "PerCPUSecond": 2000}' ;;
            esac

            """.utf8).write(to: script)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let stack = try await DevstackProcess.start(
            dataDirectory: folder.appendingPathComponent("data"), computes: 1,
            extraArguments: ["--engines", "wasm", "--price-list", prices.path, "--price-script", script.path])
        defer { stack.stop() }
        #expect(try await stack.cod("account", "deposit", "user:admin", "100000000").status == 0)
        let dry = try await stack.cod("wasm", "run", try Paths.fixture("busy"), "-e", "SECONDS=0.2", "--cpu", "0.5", "--timeout", "20", "--dry-run")
        var quotes: [String: PriceList] = [:]
        for mode in ["normal", "slow", "garbage", "escape"] {
            var spec = try #require(try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])
            spec["Meta"] = ["mode": mode]
            let file = folder.appendingPathComponent("\(mode).json")
            try JSONSerialization.data(withJSONObject: spec).write(to: file)
            let run = try await stack.cod("job", "run", file.path, "--id-only")
            #expect(run.status == 0, "\(mode): \(run.stderr)")
            let execution = try #require(try await stack.client.executions(jobID(run)).first)
            #expect(execution.computeState.stateType == .completed, "\(mode): \(execution.computeState)")
            quotes[mode] = execution.quote
            let usage = try #require(execution.usage)
            #expect(execution.cost == execution.quote.map { $0.cost(of: usage).microCredits }, "\(mode)")
        }
        let list = PriceList(start: Rate(microCredits: 1000), perCPUSecond: Rate(microCredits: 1000))
        #expect(quotes["normal"] == PriceList(start: Rate(microCredits: 100), perCPUSecond: Rate(microCredits: 1000)), "\(quotes)")
        #expect(quotes["slow"] == list && quotes["garbage"] == list, "\(quotes)")
        #expect(quotes["escape"] == PriceList(start: Rate(microCredits: 7)), "\(quotes)")
        #expect(!FileManager.default.fileExists(atPath: marker.path), "the script wrote on the host")
        #expect(stack.logText.contains("gave no price"), "the fallback is logged")
        // A script needs the list it may only lower.
        let refused = try await Run.async([try Paths.cod.path, "serve", "--compute", "--orchestrators", "http://127.0.0.1:1", "--price-script", script.path])
        #expect(refused.status != 0 && refused.stderr.contains("--price-script needs --price-list"), "\(refused.stderr)")
    }

    /// An estimate with nothing to go by is the worst case; a sample run of partition 0, then
    /// the program's history, replace it; `job run --estimate` asks above its threshold (and,
    /// with no terminal to ask, submits nothing); `job cost` shows the estimate beside the cost.
    @Test func estimatesComeFromTheRequestASampleThenHistory() async throws {
        let folder = try Paths.temporaryDirectory("cod-estimate")
        let prices = folder.appendingPathComponent("prices.yaml")
        try Data("PerCPUSecond: 1000\n".utf8).write(to: prices)
        let stack = try await DevstackProcess.start(
            dataDirectory: folder.appendingPathComponent("data"), computes: 1, extraArguments: ["--engines", "wasm", "--price-list", prices.path])
        defer { stack.stop() }
        #expect(try await stack.cod("account", "deposit", "user:admin", "100000000").status == 0)
        let dry = try await stack.cod("wasm", "run", try Paths.fixture("busy"), "-e", "SECONDS=0.3", "--cpu", "0.5", "--timeout", "20", "--dry-run")
        let file = folder.appendingPathComponent("job.json")
        try Data(dry.stdout.utf8).write(to: file)
        func estimate(_ extra: String...) async throws -> JobEstimate {
            let result = try await stack.cod(["job", "estimate", file.path, "--output", "json"] + extra)
            #expect(result.status == 0, "\(result.stderr)")
            return try JSONDecoder().decode(JobEstimate.self, from: Data(result.stdout.utf8))
        }
        // Nothing ran: 20 s at half a core at 1000 per CPU second, four attempts at worst.
        let blind = try await estimate()
        #expect(blind.basis == .request && blind.cost == CostSpread(p50: 10_000, p90: 10_000), "\(blind)")
        #expect(blind.worstCase == 40_000 && blind.hold == 40_000 && blind.parts.first?.nodeID != nil)

        let sampled = try await estimate("--sample")
        let sampleJob = try #require(sampled.sampleJobID)
        #expect(sampled.basis == .sample && sampled.parts.first?.samples == 1, "\(sampled)")
        #expect(sampled.cost.p50 > 0 && sampled.cost.p50 < 10_000, "\(sampled)")
        let sample = try await describe(stack, sampleJob)
        #expect(sample.job.state.stateType == .completed && sample.job.meta["cod.sample"] == "partition 0")

        var last = ""
        for _ in 0..<3 {
            let run = try await stack.cod("job", "run", file.path, "--id-only")
            #expect(run.status == 0, "\(run.stderr)")
            last = jobID(run)
        }
        let history = try await estimate()
        let part = try #require(history.parts.first)
        #expect(history.basis == .history && part.samples == 4, "the sample and three runs: \(history)")
        #expect(part.cost.p50 > 0 && part.cost.p50 <= part.cost.p90 && part.cost.p90 <= part.worstCase, "\(part)")
        #expect(part.cpuSeconds.p50 > 0 && part.cpuSeconds.p50 <= part.cpuSeconds.p90)
        let table = try await stack.cod("job", "estimate", file.path)
        #expect(table.stdout.contains("Basis: history, 4 earlier runs") && table.stdout.contains("COST P90"), "\(table.stdout)")

        // Above the threshold with nobody to ask: refused, and nothing is stored.
        let before = try await stack.client.listJobs(limit: 100).items.count
        let refused = try await stack.cod("job", "run", file.path, "--estimate", "--confirm-above", "1")
        #expect(refused.status != 0 && refused.stderr.contains("not submitted") && refused.stderr.contains("COST P50"), "\(refused.stderr)")
        #expect(try await stack.client.listJobs(limit: 100).items.count == before)
        let confirmed = try await stack.cod("job", "run", file.path, "--estimate", "--confirm-above", "1", "--yes", "--id-only")
        #expect(confirmed.status == 0, "\(confirmed.stderr)")

        // The cost report sets the estimate made from the runs before the job beside its cost.
        let cost = try await stack.cod("job", "cost", last)
        #expect(cost.stdout.contains("Estimated at submission (history: 3 earlier runs") && cost.stdout.contains("ESTIMATE P90"), "\(cost.stdout)")
        // A spec that is not a job is refused with the field, through the estimate route too.
        let bad = folder.appendingPathComponent("bad.json")
        try Data(#"{"Type": "batch", "Budget": {"Max": -3}, "Tasks": [{"Name": "t", "Engine": {"Type": "wasm", "Params": {"EntryModule": "/m.wasm"}}}]}"#.utf8).write(to: bad)
        let invalid = try await stack.cod("job", "estimate", bad.path)
        #expect(invalid.status != 0 && invalid.stderr.contains("Budget.Max"), "\(invalid.stderr)")
    }

    @Test func aNodePublishesItsPricesAndABadListStopsItStarting() async throws {
        let folder = try Paths.temporaryDirectory("cod-prices")
        let file = folder.appendingPathComponent("prices.yaml")
        try Data("Currency: credit\nStart: 1000\nPerCPUSecond: 50\nPerGiBSecond: 16.6667\nMinimum: 500\n".utf8).write(to: file)
        let stack = try await DevstackProcess.start(
            dataDirectory: folder.appendingPathComponent("data"), computes: 1, extraArguments: ["--engines", "wasm", "--price-list", file.path])
        defer { stack.stop() }
        let listed = try await stack.cod("node", "list", "--output", "json")
        let nodes = try JSONDecoder().decode(ListNodesResponse.self, from: Data(listed.stdout.utf8)).nodes
        let info = try #require(nodes.first?.info.computeNodeInfo)
        let prices = try #require(info.priceList, "\(listed.stdout)")
        #expect(prices.perGiBSecond.picoCredits == 16_666_700 && prices.start.picoCredits == 1_000_000_000 && prices.minimum.picoCredits == 500_000_000)
        // The CID the orchestrator computed is the raw CID of the list's canonical JSON.
        let canonical = try CanonicalJSON.encode(prices)
        #expect(info.priceListCID == CID(v1: CID.raw, multihash: .sha256(Array(canonical))).description)
        let nodeTable = try await stack.cod("node", "list")
        #expect(nodeTable.stdout.contains("per GiB-second 16.6667") && nodeTable.stdout.contains(String(info.priceListCID!.suffix(10))), "\(nodeTable.stdout)")

        // With no credits, a job on it is refused with the hold it needs and the shortfall, and
        // nothing is stored.
        let busy = ["wasm", "run", "--id-only", "--cpu", "0.5", "--timeout", "20", try Paths.fixture("busy"), "-e", "SECONDS=1"]
        let poor = try await stack.cod(busy)
        #expect(poor.status != 0 && poor.stderr.contains("short by") && poor.stderr.contains("cod account deposit user:admin"), "\(poor.stderr)")
        #expect(try await stack.client.listJobs(limit: 100).items.isEmpty)
        // Its worst case: 4 attempts of 20 s at 0.5 CPU and the default 64 MiB, at these prices.
        let worst = 4 * prices.cost(of: Usage(wallSeconds: 20, cpuSeconds: 10, memoryGiBSeconds: 20.0 / 16)).microCredits
        #expect(poor.stderr.contains("needs a hold of \(worst)"), "\(poor.stderr)")
        let deposit = try await stack.cod("account", "deposit", "user:admin", "1000000")
        #expect(deposit.status == 0, "\(deposit.stderr)")

        // A job on it is priced by that list: its metered usage, rounded up to the millisecond.
        let run = try await stack.cod(busy)
        #expect(run.status == 0, "\(run.stderr)")
        let job = try await describe(stack, jobID(run))
        let execution = try #require(job.executions?.items.first)
        let usage = try #require(execution.usage)
        #expect(execution.quote == prices)
        let expected = prices.cost(of: usage).microCredits
        #expect(execution.cost == expected && expected > 1000, "\(usage)")
        let cost = try await stack.cod("job", "cost", jobID(run), "--output", "json")
        let report = try JSONSerialization.jsonObject(with: Data(cost.stdout.utf8)) as? [String: Any]
        #expect((report?["TotalMicroCredits"] as? NSNumber)?.int64Value == expected && (report?["Unpriced"] as? NSNumber)?.intValue == 0, "\(cost.stdout)")
        let table = try await stack.cod("job", "cost", jobID(run))
        #expect(table.stdout.contains("Total: ") && table.stdout.contains("1 priced execution"), "\(table.stdout)")
        // The ledger held the worst case, paid the node what the run cost, and gave back the rest.
        #expect((report?["Held"] as? NSNumber)?.int64Value == worst && (report?["Charged"] as? NSNumber)?.int64Value == expected, "\(cost.stdout)")
        #expect((report?["Released"] as? NSNumber)?.int64Value == worst - expected, "\(cost.stdout)")
        let ledger = try await stack.client.ledger(job: jobID(run))
        #expect(ledger.map(\.kind) == [.hold, .charge, .release], "\(ledger)")
        #expect(ledger.first { $0.kind == .charge }?.to == "node:\(execution.nodeID)" && ledger.first { $0.kind == .charge }?.receipt == execution.receipt)
        #expect(try await stack.client.account("user:admin").balance == 1_000_000 - expected)
        #expect(try await stack.client.account("node:\(execution.nodeID)").balance == expected)
        let entries = try await stack.cod("ledger", "list", "--job", jobID(run))
        #expect(entries.stdout.contains("Hold") && entries.stdout.contains("Charge") && entries.stdout.contains("Release"), "\(entries.stdout)")
        // The operator's earnings are paid out of Cod, never more than were earned.
        let payout = try await stack.cod("account", "payout", "node:\(execution.nodeID)", String(expected + 1))
        #expect(payout.status != 0 && payout.stderr.contains("less than"), "\(payout.stderr)")
        #expect(try await stack.cod("account", "payout", "node:\(execution.nodeID)", String(expected)).status == 0)
        let accounts = try await stack.cod("account", "list")
        #expect(accounts.stdout.contains("user:admin") && accounts.stdout.contains("external"), "\(accounts.stdout)")

        // A Budget below the worst case is the hold; one that is not a positive amount is refused.
        let budgeted = try await stack.cod(busy + ["--budget", "5000"])
        #expect(budgeted.status == 0, "\(budgeted.stderr)")
        #expect(try await stack.client.ledger(job: jobID(budgeted)).first?.amount == 5000)
        let negative = try await stack.cod(busy + ["--budget=-1"])
        #expect(negative.status != 0 && negative.stderr.contains("Budget.Max"), "\(negative.stderr)")

        // A job whose MaxPrice is impossible, or whose strategy is unknown, is refused whole:
        // nothing is stored, nothing placed.
        for pricing in [#"{"MaxPrice": {"PerCPUSecond": -5}}"#, #"{"Strategy": "Free"}"#, #"{"MaxPrice": {"Currency": "dollar"}}"#] {
            let spec = folder.appendingPathComponent("priced.json")
            try Data(#"{"Name": "priced", "Type": "batch", "Pricing": \#(pricing), "Tasks": [{"Name": "t", "Engine": {"Type": "wasm", "Params": {"EntryModule": "/m.wasm"}}}]}"#.utf8)
                .write(to: spec)
            let refused = try await stack.cod("job", "run", spec.path)
            #expect(refused.status != 0, "\(pricing): \(refused.stdout)")
            let jobs = try await stack.cod("job", "list", "--output", "json")
            #expect(!jobs.stdout.contains("\"priced\""), "\(pricing) was stored")
        }

        // A list with a typo or an impossible rate: the node does not start, and says which.
        try Data("PerCPUSecnd: 5\nStart: -1\n".utf8).write(to: file)
        let refused = try await Run.async([try Paths.cod.path, "serve", "--compute", "--orchestrators", "http://127.0.0.1:1", "--price-list", file.path])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("PerCPUSecnd is not a price list field") && refused.stderr.contains("Start must be a number"), "\(refused.stderr)")
    }
}
