import Foundation
import Hummingbird
import Models
import NIOCore
import NodeAPI
import Wire

/// A job's results, and stored result bundles by execution.
struct ResultRoutes {
    let results: ResultService

    var collection: RouteCollection<OrchestratorContext> {
        let routes = RouteCollection(context: OrchestratorContext.self)
        let results = self.results
        routes.get("/jobs/:id/results") { request, context in
            let id = try await JobAccess.job(try context.parameters.require("id"), .readJob, context, results.database).id
            return try APIResponse.json(ListResponse(items: try await results.results(jobID: id, baseURL: request.baseURL)))
        }
        routes.get("/results/:execution") { _, context in
            let executionID = try context.parameters.require("execution")
            guard let execution = try await results.database.execution(id: executionID) else {
                throw CodError(.notFound, "execution \(executionID) not found")
            }
            try context.require(.readJob, namespace: execution.namespace)
            let data = try Data(contentsOf: try await results.bundle(executionID: executionID))
            return Response(
                status: .ok,
                headers: [.contentType: "application/gzip", .contentDisposition: "attachment; filename=\"\(executionID).tar.gz\""],
                body: ResponseBody(byteBuffer: ByteBuffer(data: data)))
        }
        return routes
    }
}
