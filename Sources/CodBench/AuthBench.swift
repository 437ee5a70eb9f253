import APIClient
import Foundation
import Logging
import Models

extension Bench {
    /// Job latency and throughput, and the latency of one API read, on a devstack that checks
    /// credentials (an API key, as every client sends) and on one that checks none, alternating
    /// (checked, unchecked, checked, unchecked) so drift on a shared machine hits both.
    static func compareAuthentication(jobs: Int, concurrent: Int, computes: Int, logger: Logger) async throws {
        var reads: [Bool: [Double]] = [:]
        for round in 1...2 {
            for checked in [true, false] {
                try await withDevstack(computes: computes, requireCredentials: checked, logger: logger) { client in
                    try await waitForComputes(computes, client: client)
                    let label = "round \(round), credentials \(checked ? "checked (API key)" : "not checked")"
                    try await measure(client: client, label: label, jobs: jobs, concurrent: concurrent)
                    reads[checked, default: []] += try await readLatencies(client: client, requests: 2000)
                }
            }
        }
        func p50(_ values: [Double]) -> Double { values.sorted()[values.count / 2] * 1000 }
        let (with, without) = (p50(reads[true] ?? [0]), p50(reads[false] ?? [0]))
        print("\nOne API read (GET /api/v1/orchestrator/jobs/ID), 2 x 2000 sequential requests each way:")
        print(String(format: "  p50 with credentials checked %.3f ms, without %.3f ms: checking costs %.3f ms", with, without, with - without))
    }

    /// Seconds for each of `requests` sequential reads of one job.
    static func readLatencies(client: CodClient, requests: Int) async throws -> [Double] {
        let id = try await client.submit(trivialJob()).jobID
        let clock = ContinuousClock()
        var latencies: [Double] = []
        for _ in 0..<requests {
            let start = clock.now
            _ = try await client.job(id)
            let elapsed = clock.now - start
            latencies.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        return latencies
    }
}
