@testable import CodTestKit
import Foundation
import Models
import Testing
import Wire

/// Ops and daemon jobs, on separate compute processes.
@Suite("Job types: ops and daemon (separate processes)")
struct JobTypesTests {
    /// A job file for `module` with the given type, built by `cod wasm run --dry-run`.
    func jobFile(_ cluster: ServeCluster, module: String, type: String, env: [String] = []) async throws -> URL {
        var arguments = ["wasm", "run", "--dry-run", module]
        for pair in env { arguments += ["-e", pair] }
        let dry = try await Run.async([cluster.cod.path] + arguments, environment: cluster.environment)
        guard dry.status == 0 else { throw TestFailure("dry run failed: \(dry.stderr)") }
        let spec = dry.stdout.replacingOccurrences(of: "\"Type\" : \"batch\"", with: "\"Type\" : \"\(type)\"")
        let file = cluster.base.appendingPathComponent("\(type)-\(UUID().uuidString.prefix(6)).json")
        try Data(spec.utf8).write(to: file)
        return file
    }

    @Test func opsRunsOnEveryNodeAndDaemonsGrowOntoNewNodes() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator()
        var computes = try (0..<2).map { try cluster.compute($0) }
        defer { for process in computes + [orchestrator] where process.isRunning { process.interrupt() } }
        try await cluster.waitForNodes(2)

        // ops: once on each node, then Completed.
        let ops = try await cluster.cli("job", "run", "--id-only", try await jobFile(cluster, module: try Paths.fixture("echo_env"), type: "ops").path)
        #expect(ops.status == 0, "\(ops.stderr)")
        let opsJob = try await cluster.waitForEnd(jobID(ops))
        #expect(opsJob.job.state.stateType == .completed, "\(opsJob.job.state.message)")
        let opsNodes = (opsJob.executions?.items ?? []).filter { $0.computeState.stateType == .completed }.map(\.nodeID)
        #expect(opsNodes.count == 2 && Set(opsNodes).count == 2, "\(opsNodes)")

        // daemon: runs on both nodes, then on a third that joins later, until stopped.
        let daemonFile = try await jobFile(cluster, module: try Paths.fixture("sleepy"), type: "daemon", env: ["SECONDS=600"])
        let daemon = try await cluster.cli("job", "run", "--id-only", "--wait=false", daemonFile.path)
        #expect(daemon.status == 0, "\(daemon.stderr)")
        let daemonID = jobID(daemon)
        func running() async throws -> Set<String> {
            Set((try await cluster.state(daemonID)?.executions?.items ?? []).filter { $0.computeState.stateType == .running }.map(\.nodeID))
        }
        for _ in 0..<200 where try await running().count < 2 { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try await running().count == 2)
        computes.append(try cluster.compute(2))
        try await cluster.waitForNodes(3)
        for _ in 0..<200 where try await running().count < 3 { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try await running().count == 3, "the daemon did not reach the new node")
        #expect(try await cluster.state(daemonID)?.job.state.stateType == .running)
        let stop = try await cluster.cli("job", "stop", daemonID)
        #expect(stop.status == 0, "\(stop.stderr)")
        let stopped = try await cluster.waitForEnd(daemonID)
        #expect(stopped.job.state.stateType == .stopped)
        for _ in 0..<100 where try await running().count > 0 { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try await running().isEmpty)

        // service: a replica that ends is replaced, and the job runs until stopped.
        let service = try await cluster.cli(
            "job", "run", "--id-only", "--wait=false", try await jobFile(cluster, module: try Paths.fixture("sleepy"), type: "service", env: ["SECONDS=1"]).path)
        let serviceID = jobID(service)
        func completedReplicas() async throws -> Int {
            (try await cluster.state(serviceID)?.executions?.items ?? []).filter { $0.computeState.stateType == .completed }.count
        }
        for _ in 0..<300 where try await completedReplicas() < 3 { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try await completedReplicas() >= 3)
        #expect(try await cluster.state(serviceID)?.job.state.stateType == .running)
        _ = try await cluster.cli("job", "stop", serviceID)
        #expect(try await cluster.waitForEnd(serviceID).job.state.stateType == .stopped)
    }
}
