import APIClient
import Foundation
import Logging
import Models

extension Bench {
    /// Job latency and throughput, and the latency of one API read, on devstacks that check
    /// no credentials, check an API key (as every client sends), and check one over TLS (a
    /// self-signed certificate the client pins), alternating round by round so drift on a
    /// shared machine hits every mode.
    static func compareAuthentication(jobs: Int, concurrent: Int, computes: Int, logger: Logger) async throws {
        let modes: [(label: String, checked: Bool, tls: Bool)] = [
            ("credentials not checked", false, false), ("credentials checked (API key)", true, false),
            ("credentials checked, over TLS", true, true),
        ]
        var reads: [String: [Double]] = [:]
        for round in 1...2 {
            for mode in modes {
                try await withDevstack(computes: computes, requireCredentials: mode.checked, tls: mode.tls, logger: logger) { client in
                    try await waitForComputes(computes, client: client)
                    try await measure(client: client, label: "round \(round), \(mode.label)", jobs: jobs, concurrent: concurrent)
                    reads[mode.label, default: []] += try await readLatencies(client: client, requests: 2000)
                }
            }
        }
        func p50(_ values: [Double]) -> Double { values.sorted()[values.count / 2] * 1000 }
        let medians = modes.map { p50(reads[$0.label] ?? [0]) }
        print("\nOne API read (GET /api/v1/orchestrator/jobs/ID), 2 x 2000 sequential requests on a kept-alive connection:")
        for (mode, median) in zip(modes, medians) { print("  p50 \(mode.label): " + String(format: "%.3f ms", median)) }
        print(String(format: "  checking credentials costs %.3f ms; TLS costs %.3f ms more", medians[1] - medians[0], medians[2] - medians[1]))
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
