import Models
import StateStore
import Wire

/// What an administrator does with nodes: find one by ID prefix, approve, reject, release from
/// quarantine or delete it.
extension Orchestrator {
    /// The one node whose ID starts with `prefix`.
    func node(matching prefix: String) async throws -> NodeState {
        let nodes = try await database.nodes().filter { $0.info.nodeID.hasPrefix(prefix) }
        guard nodes.count == 1 else {
            throw nodes.isEmpty
                ? CodError(.notFound, "node \(prefix) not found", hint: "list nodes with: cod node list")
                : CodError(.ambiguous, "node ID prefix \(prefix) matches \(nodes.count) nodes")
        }
        return nodes[0]
    }

    /// Carries out an administrator's decision about a node.
    func decide(_ action: String, node: NodeState, message: String) async throws -> PutNodeResponse {
        let nodeID = node.info.nodeID
        let note = message.isEmpty ? "" : " (\(message))"
        switch action.lowercased() {
        case "approve":
            _ = try await database.setMembership(nodeID: nodeID, to: .approved)
            logger.info("node \(shortID(nodeID)) approved\(note)")
            // Jobs waiting for a node may fit on this one now, and daemon jobs extend to it.
            let waiting = await waitlist.all + ((try? await database.unfinishedJobIDs(type: .daemon)) ?? [])
            if !waiting.isEmpty { await evaluate(jobIDs: Array(Set(waiting)), trigger: .nodeJoin) }
        case "reject":
            let jobs = try await database.setMembership(nodeID: nodeID, to: .rejected)
            logger.info("node \(shortID(nodeID)) rejected\(note)")
            // It is cut off; its executions are rescheduled elsewhere.
            await hub.disconnect(nodeID: nodeID)
            if !jobs.isEmpty { await evaluate(jobIDs: jobs, trigger: .nodeLeave) }
        case "release":
            let forgiven = try await database.releaseQuarantine(nodeID: nodeID, message: message, now: nowNanos())
            logger.info("node \(shortID(nodeID)) released from quarantine; \(forgiven) invalid results no longer count toward it\(note)")
            // Work waiting for capacity may go to it again.
            let waiting = await waitlist.all
            if !waiting.isEmpty { await evaluate(jobIDs: waiting, trigger: .nodeJoin) }
            return PutNodeResponse(success: true, node: quarantined(try await self.node(matching: nodeID)))
        case "delete":
            let jobs = try await database.deleteNode(nodeID: nodeID)
            logger.info("node \(shortID(nodeID)) deleted\(note)")
            await hub.disconnect(nodeID: nodeID)
            if !jobs.isEmpty { await evaluate(jobIDs: jobs, trigger: .nodeLeave) }
            return PutNodeResponse(success: true)
        default:
            throw CodError(.badRequest, "unknown node action \"\(action)\"; use approve, reject, release or delete")
        }
        return PutNodeResponse(success: true, node: try await self.node(matching: nodeID))
    }
}
