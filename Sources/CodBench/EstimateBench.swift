import APIClient
import ArgumentParser
import CodTestKit
import Foundation
import Models
import Wire

/// `cod bench estimate`: the weather example's map/reduce on priced nodes. The first-ever run
/// is estimated from a sample run of partition 0; after `runs` runs, the next is estimated from
/// history. Each estimate is set against the run's actual cost (its executions' metered usage
/// at their nodes' prices), measured in the same run.
struct EstimateBench {
    var bytes: Int
    var shards: Int
    var computes: Int
    var runs: Int

    /// CPU-time pricing with a memory rate, so that both meters count.
    static let prices = "Currency: credit\nStart: 100\nPerCPUSecond: 10000\nPerGiBSecond: 1000\n"

    func run() async throws {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("cod-estimate-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: base) }
        print("cod bench estimate: the Lisbon rainfall job over \(ResourceParsing.formatBytes(UInt64(bytes))) in \(shards) shards on \(computes) priced compute processes")
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB")
        let logs = base.appendingPathComponent("logs")
        _ = try DatasetBench.generate(into: logs, files: shards, bytes: bytes)
        let priceFile = base.appendingPathComponent("prices.yaml")
        try Data(Self.prices.utf8).write(to: priceFile)

        let port = try Ports.free()
        let cluster = ChildProcesses(executable: executable, logs: base)
        defer { cluster.stopAll() }
        let orchestrator = try cluster.orchestrator(port: port, data: base.appendingPathComponent("o"), token: "bench", ["--heartbeat-interval", "0.5"])
        for index in 0..<computes {
            _ = try cluster.compute(
                index, port: port, data: base.appendingPathComponent("c\(index)"), token: "bench", engines: "process", ["--price-list", priceFile.path])
        }
        let key = try await cluster.adminKey(data: base.appendingPathComponent("o"))
        let client = CodClient(host: "127.0.0.1", port: port, timeout: .minutes(10), credential: .apiKey(key))
        try await cluster.waitForComputes(computes, client: client, orchestrator: orchestrator)
        _ = try await client.transfer(.deposit, account: "user:admin", amount: Budget.limit, memo: "bench")
        let datasetCID = try DatasetBench.cod(
            executable, apiKey: key, ["data", "add", logs.path, "--shards", String(shards), "--replication", "1", "--name", "bench", "--cid-version", "1",
                         "--quiet", "--api-host", "127.0.0.1", "--api-port", String(port)])
        let job = DatasetBench.job(datasetCID)

        // The first-ever run: nothing ran, so partition 0 runs first as the sample.
        let sampleID = try await client.submitSample(job)
        _ = try await Self.finish(sampleID, client)
        let fromSample = try await client.estimate(job, sampleJobID: sampleID)
        let first = try await Self.cost(of: try await client.submit(job).jobID, client)
        var costs = [first]
        for _ in 1..<runs { costs.append(try await Self.cost(of: try await client.submit(job).jobID, client)) }
        let fromHistory = try await client.estimate(job)
        let measured = try await Self.cost(of: try await client.submit(job).jobID, client)

        let percent = { (actual: Int64, estimate: Int64) in String(format: "%+.1f%%", (Double(actual) / Double(max(estimate, 1)) - 1) * 100) }
        print("runs' actual costs (micro-credits): \(costs.map(String.init).joined(separator: ", "))")
        print("")
        print(TextTable.render(
            ["RUN", "BASIS", "ESTIMATE P50", "ESTIMATE P90", "ACTUAL", "ACTUAL VS P50", "WITHIN P90"],
            [
                ["1 (first ever)", "sample of partition 0", String(fromSample.cost.p50), String(fromSample.cost.p90), String(first),
                 percent(first, fromSample.cost.p50), first <= fromSample.cost.p90 ? "yes" : "no"],
                ["\(runs + 1)", "history of \(runs) runs", String(fromHistory.cost.p50), String(fromHistory.cost.p90), String(measured),
                 percent(measured, fromHistory.cost.p50), measured <= fromHistory.cost.p90 ? "yes" : "no"],
            ]))
        print("worst case (the hold without a budget): \(fromHistory.worstCase) micro-credits")
    }

    static func finish(_ id: String, _ client: CodClient) async throws -> Job {
        var job = try await client.job(id).job
        while !job.state.stateType.isTerminal { job = try await client.wait(id, afterRevision: job.revision, timeoutSeconds: 30) }
        guard job.state.stateType == .completed else { throw ValidationError("job \(id) \(job.state.stateType.rawValue.lowercased()): \(job.state.message)") }
        return job
    }

    /// What a finished job's executions cost, in micro-credits.
    static func cost(of id: String, _ client: CodClient) async throws -> Int64 {
        _ = try await finish(id, client)
        let executions = try await client.executions(id)
        let cpu = executions.compactMap(\.usage?.cpuSeconds).reduce(0, +)
        let memory = executions.compactMap(\.usage?.memoryGiBSeconds).reduce(0, +)
        print(String(format: "  job %@: %.3f CPU s, %.4f GiB·s over %d executions", shortID(id), cpu, memory, executions.count))
        return executions.compactMap(\.cost).reduce(0, +)
    }
}
