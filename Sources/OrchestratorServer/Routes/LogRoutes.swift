import Hummingbird
import StateStore

/// `GET /jobs/{id}/logs`: NDJSON, followed live with `follow=true`.
struct LogRoutes {
    let logs: LogService
    let database: AppDatabase

    var collection: RouteCollection<OrchestratorContext> {
        let routes = RouteCollection(context: OrchestratorContext.self)
        let logs = self.logs
        let database = self.database
        routes.get("/jobs/:id/logs") { request, context in
            let id = try await JobAccess.job(try context.parameters.require("id"), .readJob, context, database).id
            let follow = request.uri.queryParameters.get("follow") == "true"
            let executionFilter = request.uri.queryParameters.get("execution_id") ?? ""
            return Response(
                status: .ok, headers: [.contentType: "application/x-ndjson"],
                body: ResponseBody { writer in
                    try await logs.streamLogs(jobID: id, follow: follow, executionFilter: executionFilter, writer: &writer)
                    try await writer.finish(nil)
                })
        }
        return routes
    }
}
