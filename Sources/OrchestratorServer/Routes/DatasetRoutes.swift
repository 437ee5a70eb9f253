import Foundation
import Hummingbird
import NodeAPI
import Wire

/// `/api/v1/orchestrator/datasets`: placement, upload grants, manifests, and who holds what.
struct DatasetRoutes {
    let datasets: DatasetService
    let maxManifestBytes: Int

    var collection: RouteCollection<OrchestratorContext> {
        let routes = RouteCollection(context: OrchestratorContext.self)
        let datasets = self.datasets
        let maxManifestBytes = self.maxManifestBytes
        routes.post("/placement") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            return try APIResponse.json(try await datasets.placement(try JSONDecoder().decode(DatasetPlacementRequest.self, from: Data(buffer: body))))
        }
        // A signed grant to upload one shard straight to one node (which holds no user keys).
        routes.post("/grants") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            return try APIResponse.json(try await datasets.grant(try JSONDecoder().decode(UploadGrantRequest.self, from: Data(buffer: body))))
        }
        routes.put("") { request, context in
            let body = try await request.body.collect(upTo: maxManifestBytes)
            let put = try JSONDecoder().decode(PutDatasetRequest.self, from: Data(buffer: body))
            return try APIResponse.json(try await datasets.save(put.dataset, after: put.after, by: context.principal))
        }
        routes.get("") { _, _ in try APIResponse.json(ListResponse(items: try await datasets.all())) }
        routes.get("/names/:name") { _, context in try APIResponse.json(try await datasets.named(try context.parameters.require("name"))) }
        routes.get("/:cid") { _, context in try APIResponse.json(try await datasets.one(cid: try context.parameters.require("cid"))) }
        routes.delete("/:cid") { _, context in
            let cid = try context.parameters.require("cid")
            try await datasets.delete(cid: cid)
            return try APIResponse.json(["Deleted": cid])
        }
        return routes
    }
}
