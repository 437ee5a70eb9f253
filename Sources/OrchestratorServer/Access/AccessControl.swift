import Hummingbird
import Models
import NodeAPI
import Wire

/// What a route asks of its caller.
enum Requirement: Sendable, Equatable {
    /// Anyone: liveness, version, which auth methods exist, and the read-only gateway.
    case open
    /// A compute node: the collection checks the node's signed request itself.
    case node
    /// Any known user.
    case authenticated
    /// A user holding the action (in some namespace; handlers check the job's own).
    case action(Action)
}

/// Every route's requirement, in one table read top to bottom. A path nobody listed needs a
/// known user (and then answers 404), so a route added later is never open by mistake.
struct AccessPolicy: Sendable {
    /// Whether `GET|HEAD /ipfs/...` needs no credentials (peers fetch inputs there).
    var gatewayOpen: Bool

    func requirement(method: HTTPRequest.Method, path: String) -> Requirement {
        let reading = method == .get || method == .head
        let rw: (Action, Action) -> Requirement = { read, write in .action(reading ? read : write) }
        switch true {
        case ["/api/v1/agent/alive", "/api/v1/agent/version", "/api/v1/agent/authconfig", "/api/v1/compute/challenge"].contains(path)
            && reading: return .open
        case path.hasPrefix("/ipfs/"): return gatewayOpen && reading ? .open : .action(.readData)
        case path.hasPrefix("/api/v1/compute/"): return .node
        case path.hasPrefix("/api/v1/agent/"): return rw(.readAgent, .writeAgent)
        case path == "/api/v1/auth/whoami": return .authenticated
        case path.hasPrefix("/api/v1/auth/"): return .action(.admin)
        case path == "/api/v1/orchestrator/gc", path == "/api/v1/data/gc": return .action(.admin)
        // Tokens let machines join: the operator's alone, listing included.
        case path.hasPrefix("/api/v1/orchestrator/join-tokens"): return .action(.admin)
        // Deciding about nodes is the operator's: approval lets a machine run strangers' work.
        case path.hasPrefix("/api/v1/orchestrator/nodes"): return reading ? .action(.readNode) : .action(.admin)
        case path == "/api/v1/orchestrator/reputation": return reading ? .action(.readNode) : .action(.admin)
        // Anyone known reads its own account (handlers check whose); moving credits is an admin's.
        case path.hasPrefix("/api/v1/orchestrator/accounts"), path == "/api/v1/orchestrator/ledger":
            return reading ? .authenticated : .action(.admin)
        // A webhook's credential is its signature, checked by the handler.
        case path.hasPrefix("/api/v1/orchestrator/schedules/") && path.hasSuffix("/webhook") && !reading: return .open
        case path.hasPrefix("/api/v1/orchestrator/jobs"), path.hasPrefix("/api/v1/orchestrator/results/"),
            path.hasPrefix("/api/v1/orchestrator/schedules"):
            return rw(.readJob, .writeJob)
        case path.hasPrefix("/api/v1/orchestrator/datasets"), path.hasPrefix("/api/v1/data/"): return rw(.readData, .writeData)
        default: return .authenticated
        }
    }

    /// Routes a compute node calls, signing the request, besides its own collection: uploading
    /// a result DAG (pinned for the result only, see ``OrchestratorContext/pinHolder(requested:)``).
    func nodeMayCall(method: HTTPRequest.Method, path: String) -> Bool {
        method == .put && path == "/api/v1/data/car"
    }
}

/// Checks every request's credentials against the route's requirement before any handler
/// runs: no credentials is 401, credentials without the capability 403, both as JSON errors
/// with a code.
struct AccessControl: RouterMiddleware {
    typealias Context = OrchestratorContext
    let users: UserService
    let policy: AccessPolicy
    let nodes: NodeRequestVerifier
    /// False only to measure the cost of checking (see `OrchestratorConfig.requireCredentials`).
    var requireCredentials = true

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let requirement = policy.requirement(method: request.method, path: path)
        if requirement == .open || requirement == .node { return try await next(request, context) }
        var context = context
        guard requireCredentials else {
            context.caller = .user(Principal(name: "admin", capabilities: [Capability(actions: [.admin])]))
            return try await next(request, context)
        }
        let authorization = request.headers[.authorization]
        if policy.nodeMayCall(method: request.method, path: path), authorization?.hasPrefix(NodeIdentity.requestScheme + " ") == true {
            context.caller = .node(try await nodes.nodeID(of: request))
            return try await next(request, context)
        }
        do {
            guard let principal = try await users.authenticate(authorization: authorization) else {
                throw CodError(
                    .unauthorized, "\(request.method) \(path) needs credentials",
                    hint: "send Authorization: Bearer <API key> (COD_API_KEY for the CLI) or log in with cod auth login")
            }
            if let scope = principal.scope, try await !users.scoped(scope, mayCall: request.method, path: path) {
                throw CodError(
                    .forbidden, "an execution's key may not \(request.method) \(path)",
                    hint: "it submits children (PUT /api/v1/orchestrator/jobs) and reads its own job and its descendants, nothing else")
            }
            if case .action(let action) = requirement, !principal.allows(action) {
                throw CodError(
                    .forbidden, "user \(principal.name) may not \(request.method) \(path): it needs \(action.rawValue)",
                    hint: "an admin can add the capability (cod auth user add)")
            }
            context.caller = .user(principal)
        } catch let error as CodError where error.code == .unauthorized {
            var response = APIResponse.error(error, requestID: context.id)
            // Bearer only: a Basic challenge makes Foundation's URLSession on Linux wait for a
            // credential forever instead of returning the 401. Basic still works when sent.
            response.headers[.wwwAuthenticate] = "Bearer realm=\"cod\""
            return response
        }
        return try await next(request, context)
    }
}
