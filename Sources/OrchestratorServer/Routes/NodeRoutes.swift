import Foundation
import Hummingbird
import Models
import NodeAPI
import Wire

/// `/api/v1/orchestrator/nodes`: list and describe nodes.
struct NodeRoutes {
    let orchestrator: Orchestrator

    var collection: RouteCollection<OrchestratorContext> {
        let routes = RouteCollection(context: OrchestratorContext.self)
        let orchestrator = self.orchestrator
        routes.get("/nodes") { _, _ in
            try APIResponse.json(ListNodesResponse(nodes: try await orchestrator.database.nodes().map(orchestrator.quarantined)))
        }
        routes.get("/nodes/:id") { _, context in
            try APIResponse.json(GetNodeResponse(node: orchestrator.quarantined(try await orchestrator.node(matching: try context.parameters.require("id")))))
        }
        // How the node's verified results fared, per engine and artifact.
        routes.get("/nodes/:id/reputation") { _, context in
            let node = try await orchestrator.node(matching: try context.parameters.require("id"))
            return try APIResponse.json(ListResponse(items: try await orchestrator.database.reputation(nodeID: node.info.nodeID)))
        }
        // Every receipt the node signed, as received: its chain, to verify offline.
        routes.get("/nodes/:id/receipts") { _, context in
            let node = try await orchestrator.node(matching: try context.parameters.require("id"))
            return try APIResponse.json(try await orchestrator.receipts(ofNode: node.info.nodeID))
        }
        routes.get("/reputation") { _, _ in
            try APIResponse.json(ListResponse(items: try await orchestrator.database.reputation()))
        }
        return routes
    }
}

/// What administrators do: decide about nodes (Bacalhau's shape: the ID in the path, or in
/// the body of a POST to the collection) and collect garbage now rather than at the next pass.
struct AdminRoutes {
    let orchestrator: Orchestrator

    var collection: RouteCollection<OrchestratorContext> {
        let routes = RouteCollection(context: OrchestratorContext.self)
        let orchestrator = self.orchestrator
        routes.post("/gc") { _, _ in try APIResponse.json(try await orchestrator.collectGarbage()) }
        let decide: @Sendable (Request, OrchestratorContext) async throws -> Response = { request, context in
            let body = try await request.body.collect(upTo: 1 << 20)
            let decision = try RequestDecoding.decode(PutNodeRequest.self, json: Data(buffer: body))
            let id = context.parameters.get("id") ?? decision.nodeID
            guard !id.isEmpty else { throw CodError(.badRequest, "say which node: NodeID in the body or /nodes/{id}") }
            let node = try await orchestrator.node(matching: id)
            return try APIResponse.json(try await orchestrator.decide(decision.action, node: node, message: decision.message))
        }
        for path: RouterPath in ["/nodes/:id", "/nodes"] {
            routes.put(path, use: decide)
            routes.post(path, use: decide)
        }
        return routes
    }
}
