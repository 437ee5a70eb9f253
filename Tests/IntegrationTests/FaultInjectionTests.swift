import Foundation
import Models
import Testing
import Wire

/// Processes on this machine whose environment holds `COD_EXECUTION_ID=<id>` (the sandboxed
/// program of that execution and its children).
func processes(ofExecution id: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    let needle = Array("COD_EXECUTION_ID=\(id)".utf8)
    return entries.compactMap { Int32($0) }.filter { pid in
        guard let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
        return environ.split(separator: 0).contains { Array($0) == needle }
    }
}

@Suite("Fault injection (separate processes)", .serialized)
struct FaultInjectionTests {
    /// A compute node freezes (SIGSTOP) mid-job: it turns suspect, then lost; its execution runs
    /// again on another node and the job completes once. When the node thaws it reconnects and is
    /// told to stop the execution it still runs, which was given up.
    @Test func frozenNodeIsSuspectThenLostAndItsStaleWorkIsStoppedWhenItReturns() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator(["--node-timeout", "4", "--heartbeat-interval", "0.5"])
        let computes = try (0..<2).map { try cluster.compute($0, ["--engines", "process", "--labels", "slot=\($0)"]) }
        defer {
            for process in computes { kill(process.processIdentifier, SIGCONT) }
            for process in [orchestrator] + computes where process.isRunning { process.interrupt() }
        }
        try await cluster.waitForNodes(2)
        let submitted = try await cluster.cli("exec", "--id-only", "--wait=false", "--", "sh", "-c", "sleep 12; echo finished")
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        var first: Execution?
        for _ in 0..<200 where first == nil {
            first = try await cluster.state(id)?.executions?.items.first { $0.computeState.stateType == .running }
            if first == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let running = try #require(first)
        let nodes = try await cluster.nodes()
        let slot = try #require(nodes.first { $0.info.nodeID == running.nodeID }?.info.labels["slot"].flatMap { Int($0) })
        let frozen = computes[slot]
        // The program is running in its sandbox on that node.
        for _ in 0..<100 where processes(ofExecution: running.id).isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!processes(ofExecution: running.id).isEmpty)

        kill(frozen.processIdentifier, SIGSTOP)
        var seen: [NodeLiveness] = []
        for _ in 0..<100 where seen.last != .lost {
            if let state = try await cluster.nodes().first(where: { $0.info.nodeID == running.nodeID })?.liveness, state != seen.last {
                seen.append(state)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(seen.contains(.suspect) && seen.last == .lost, "liveness went \(seen)")
        // The work moves to the other node while the frozen one's sandbox still runs it.
        var moved = false
        for _ in 0..<100 where !moved {
            moved = try await cluster.state(id)?.executions?.items.contains {
                $0.nodeID != running.nodeID && $0.computeState.stateType == .running
            } == true
            if !moved { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(moved)
        #expect(!processes(ofExecution: running.id).isEmpty)

        // Thawed, the node reconnects and stops the execution that was given up, long before
        // its program would have ended by itself.
        kill(frozen.processIdentifier, SIGCONT)
        var stopped = false
        for _ in 0..<100 where !stopped {
            stopped = processes(ofExecution: running.id).isEmpty
            if !stopped { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(stopped, "the stale execution kept running on the returning node")
        var healthy = false
        for _ in 0..<100 where !healthy {
            healthy = try await cluster.nodes().first { $0.info.nodeID == running.nodeID }?.liveness == .healthy
            if !healthy { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(healthy)

        let job = try await cluster.waitForEnd(id)
        #expect(job.job.state.stateType == .completed, "\(job.job.state)")
        let executions = job.executions?.items ?? []
        #expect(executions.filter { $0.computeState.stateType == .completed }.count == 1)
        #expect(executions.first { $0.id == running.id }?.computeState.stateType == .failed)
        let logs = try await cluster.cli("job", "logs", id)
        #expect(logs.stdout == "finished\n", "\(logs.stdout)")
    }
}
