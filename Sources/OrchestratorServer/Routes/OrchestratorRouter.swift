public import Hummingbird
import Models
import NodeAPI

/// Who made a request.
public enum Caller: Sendable, Hashable {
    /// A client that presented no credentials (the user API has no authentication yet).
    case anonymous
    /// A compute node that presented the join token and named itself.
    case node(String)
}

/// The request context every orchestrator route gets: the request's ID (sent back in error
/// bodies and the `X-Request-ID` header) and the caller.
public struct OrchestratorContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var caller: Caller = .anonymous

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// The request's ID, as in its log lines.
    public var requestID: String { id }
}

extension Orchestrator {
    /// All REST routes, mounted under `/api/v1` with Bacalhau's paths: one collection per
    /// area, each over the services that hold its logic.
    func buildRouter() -> Router<OrchestratorContext> {
        let router = Router(context: OrchestratorContext.self)
        router.add(middleware: ErrorMiddleware())
        AgentRoutes(info: { NodeInfo(nodeID: "orchestrator", nodeType: "Requester") }).add(to: router)
        router.addRoutes(JobRoutes(orchestrator: self).collection, atPath: "/api/v1/orchestrator")
        router.addRoutes(ResultRoutes(results: results).collection, atPath: "/api/v1/orchestrator")
        router.addRoutes(LogRoutes(logs: logs, database: database).collection, atPath: "/api/v1/orchestrator")
        router.addRoutes(NodeRoutes(orchestrator: self).collection, atPath: "/api/v1/orchestrator")
        router.addRoutes(AdminRoutes(orchestrator: self).collection, atPath: "/api/v1/orchestrator")
        router.addRoutes(DatasetRoutes(datasets: datasets, maxManifestBytes: config.maxManifestBytes).collection, atPath: "/api/v1/orchestrator/datasets")
        router.addRoutes(ComputeRoutes(uploads: uploads, token: config.token).collection, atPath: "/api/v1/compute")
        ContentRoutes(store: store, scratchDirectory: config.dataDirectory, maxUploadBytes: config.maxResultBytes).add(to: router)
        return router
    }
}

/// Lets only compute nodes holding the join token through, and records which node called.
struct NodeAuthentication: RouterMiddleware {
    typealias Context = OrchestratorContext
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard Secrets.equal(request.headers[.authorization] ?? "", "Bearer \(token)") else { throw CodError(.unauthorized, "invalid join token") }
        var context = context
        context.caller = .node(request.headers[.init("X-Cod-Node-ID")!] ?? "")
        return try await next(request, context)
    }
}
