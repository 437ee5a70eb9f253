@testable import CodTestKit
import Foundation
import Models
import Testing
import Wire

@Suite("Node approval, rejection and deletion (separate processes)")
struct MembershipTests {
    func nodes(_ cluster: ServeCluster) async throws -> [NodeState] {
        let list = try await cluster.cli("node", "list", "--output", "json")
        return try JSONDecoder().decode(ListNodesResponse.self, from: Data(list.stdout.utf8)).nodes
    }

    func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<300 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("timed out waiting until \(what)")
    }

    @Test func manualApprovalRejectionAndDeletion() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator(["--node-approval", "manual"])
        let computes = try (0..<2).map { try cluster.compute($0) }
        defer { for process in computes + [orchestrator] where process.isRunning { process.interrupt() } }
        try await cluster.waitForNodes(2)
        func id(_ index: Int) throws -> String {
            try String(contentsOf: cluster.base.appendingPathComponent("c\(index)/compute/node-id"), encoding: .utf8)
        }
        let first = try id(0)
        let second = try id(1)

        // New nodes wait for approval; jobs cannot use them and say why.
        #expect(try await nodes(cluster).allSatisfy { $0.membership == .pending })
        let refused = try await cluster.cli("wasm", "run", try Paths.fixture("echo_env"))
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("membership is PENDING"), "\(refused.stderr)")

        // Approved, the first node takes the work.
        let approve = try await cluster.cli("node", "approve", String(first.prefix(10)), "-m", "rack 1 checked")
        #expect(approve.status == 0, "\(approve.stderr)")
        #expect(approve.stdout.contains("approved"))
        let ran = try await cluster.cli("wasm", "run", "--id-only", try Paths.fixture("echo_env"))
        #expect(ran.status == 0, "\(ran.stderr)")
        let ranOn = try #require(try await cluster.state(jobID(ran))?.executions?.items.first?.nodeID)
        #expect(ranOn == first)

        // A long job runs on the first node; rejecting that node moves the work to the second,
        // once it is approved, and the job still completes. (Long enough that the three CLI
        // calls before the rejection cannot outlast it on a loaded machine.)
        let long = try await cluster.cli("wasm", "run", "--id-only", "--wait=false", try Paths.fixture("sleepy"), "-e", "SECONDS=25")
        let longID = jobID(long)
        try await waitUntil("the long job runs") {
            try await cluster.state(longID)?.executions?.items.contains { $0.computeState.stateType == .running } == true
        }
        _ = try await cluster.cli("node", "approve", String(second.prefix(10)))
        let reject = try await cluster.cli("node", "reject", String(first.prefix(10)), "--message", "decommissioned")
        #expect(reject.status == 0, "\(reject.stderr)")
        try await waitUntil("the rejected node is cut off") {
            try await nodes(cluster).contains { $0.info.nodeID == first && $0.membership == .rejected && $0.connection == .disconnected }
        }
        // Its reconnects are refused with the reason.
        try await waitUntil("the rejected node hears why") {
            ((try? String(contentsOf: cluster.base.appendingPathComponent("compute0.log"), encoding: .utf8)) ?? "")
                .contains("rejected by the cluster's administrator")
        }
        let finished = try await cluster.waitForEnd(longID, seconds: 90)
        #expect(finished.job.state.stateType == .completed, "\(finished.job.state.message)")
        let executions = finished.executions?.items ?? []
        #expect(executions.contains { $0.nodeID == first && $0.computeState.message.contains("rejected by an administrator") })
        #expect(executions.contains { $0.nodeID == second && $0.computeState.stateType == .completed })

        // Deleted, the node is forgotten; when it dials in again it is a new, pending node.
        let delete = try await cluster.cli("node", "delete", String(first.prefix(10)))
        #expect(delete.status == 0, "\(delete.stderr)")
        try await waitUntil("the deleted node rejoins as pending") {
            try await nodes(cluster).contains { $0.info.nodeID == first && $0.membership == .pending && $0.connection == .connected }
        }
        // Unknown nodes and actions get specific errors.
        let unknown = try await cluster.cli("node", "approve", "n-nonexistent")
        #expect(unknown.stderr.contains("node n-nonexistent not found"), "\(unknown.stderr)")
    }
}
