import Hummingbird
import Models
import NodeAPI

/// `/api/v1/compute`: what compute nodes call over HTTP (the WebSocket link is separate).
struct ComputeRoutes {
    let uploads: ResultUploads
    let nodes: NodeRequestVerifier

    var collection: RouteCollection<OrchestratorContext> {
        let routes = RouteCollection(context: OrchestratorContext.self)
        routes.add(middleware: NodeAuthentication(verifier: nodes))
        let uploads = self.uploads
        routes.put("/results/:execution") { request, context in
            guard case .node(let nodeID) = context.caller else { throw CodError(.unauthorized, "only compute nodes upload results") }
            let (digest, size) = try await uploads.store(
                executionID: try context.parameters.require("execution"), from: nodeID,
                expectedSHA256: request.headers[.init("X-Cod-SHA256")!], body: request.body)
            return try APIResponse.json(["SHA256": digest, "Size": String(size)])
        }
        return routes
    }
}
