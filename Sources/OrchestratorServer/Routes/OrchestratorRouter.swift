public import Hummingbird
import BlockStore
import Models
import NodeAPI
import Wire

/// Who made a request.
public enum Caller: Sendable, Hashable {
    /// No credentials: only open routes get this far.
    case anonymous
    /// A compute node whose request its enrolled key signed.
    case node(String)
    /// A user whose API key or password was checked.
    case user(Principal)
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

    /// The user behind the request; nil for nodes and open routes.
    var principal: Principal? {
        if case .user(let principal) = caller { return principal }
        return nil
    }

    /// Throws forbidden unless the caller may do `action` in `namespace`.
    func require(_ action: Action, namespace: String) throws {
        guard let principal, principal.allows(action, namespace: namespace) else {
            throw CodError(
                .forbidden, "\(principal.map { "user \($0.name)" } ?? "this caller") may not \(action.rawValue) in namespace \(namespace)",
                hint: "an admin can add the capability for that namespace (cod auth user add)")
        }
    }

    /// `job` as this caller may see it: with its secrets only for its owner and admins.
    func view(_ job: Job) -> Job {
        principal?.maySeeSecrets(of: job) == true ? job : job.hidingSecrets()
    }
}

extension OrchestratorContext: DataAccessContext {
    /// A user's pins are their own (`user:NAME`); a dataset's shard pins take `write:data`
    /// (which the route already required); a result's or another user's only an admin or,
    /// for results, a compute node.
    public func pinHolder(requested: String?) throws -> String {
        switch caller {
        case .user(let principal):
            let own = PinHolder.user(named: principal.name)
            guard let requested, requested != PinHolder.user, requested != own else { return own }
            guard PinHolder.isValid(requested) else {
                throw CodError(.badRequest, "holder \(requested.prefix(140)) is invalid", hint: "use user, dataset:<CID> or (admins) result:<execution ID>")
            }
            if requested.hasPrefix("dataset:") || principal.isAdmin { return requested }
            throw CodError(.forbidden, "user \(principal.name) may not pin or unpin for \(requested)", hint: "only an admin acts for other holders")
        case .node:
            guard let requested, requested.hasPrefix("result:"), PinHolder.isValid(requested) else {
                throw CodError(.forbidden, "a compute node pins only results (holder result:<execution ID>)")
            }
            return requested
        case .anonymous:
            throw CodError(.unauthorized, "pinning needs credentials")
        }
    }
}

extension Orchestrator {
    /// All REST routes, mounted under `/api/v1` with Bacalhau's paths: one collection per
    /// area, each over the services that hold its logic.
    func buildRouter() -> Router<OrchestratorContext> {
        let router = Router(context: OrchestratorContext.self)
        router.add(middleware: ErrorMiddleware())
        let nodes = NodeRequestVerifier(database: database)
        router.add(middleware: AccessControl(
            users: users, policy: AccessPolicy(gatewayOpen: config.gatewayOpen), nodes: nodes,
            requireCredentials: config.requireCredentials))
        AgentRoutes(info: { NodeInfo(nodeID: "orchestrator", nodeType: "Requester") }).add(to: router)
        let gatewayOpen = config.gatewayOpen
        let challenges = self.challenges
        router.get("/api/v1/compute/challenge") { _, _ in try APIResponse.json(["Challenge": await challenges.issue()]) }
        router.get("/api/v1/agent/authconfig") { _, _ in
            try APIResponse.json(AuthConfigResponse(methods: ["apikey", "basic"], gatewayOpen: gatewayOpen))
        }
        router.addRoutes(JobRoutes(orchestrator: self).collection, atPath: "/api/v1/orchestrator")
        router.addRoutes(ResultRoutes(results: results).collection, atPath: "/api/v1/orchestrator")
        router.addRoutes(LogRoutes(logs: logs, database: database).collection, atPath: "/api/v1/orchestrator")
        router.addRoutes(NodeRoutes(orchestrator: self).collection, atPath: "/api/v1/orchestrator")
        router.addRoutes(AdminRoutes(orchestrator: self).collection, atPath: "/api/v1/orchestrator")
        router.addRoutes(LedgerRoutes(database: database).collection, atPath: "/api/v1/orchestrator")
        router.addRoutes(ScheduleRoutes(orchestrator: self).collection, atPath: "/api/v1/orchestrator")
        router.addRoutes(AuthRoutes(users: users).collection, atPath: "/api/v1/auth")
        router.addRoutes(JoinTokenRoutes(tokens: joinTokens).collection, atPath: "/api/v1/orchestrator/join-tokens")
        router.addRoutes(DatasetRoutes(datasets: datasets, maxManifestBytes: config.maxManifestBytes).collection, atPath: "/api/v1/orchestrator/datasets")
        router.addRoutes(ComputeRoutes(uploads: uploads, nodes: nodes).collection, atPath: "/api/v1/compute")
        ContentRoutes(store: store, scratchDirectory: config.dataDirectory, maxUploadBytes: config.maxResultBytes).add(to: router)
        return router
    }
}
