import Foundation
import Hummingbird
import Models
import StateStore
import Wire

/// Checks a compute node's signed HTTP request (`Authorization: CodNode ID:TIME:SIGNATURE`):
/// the node must be enrolled, the time within ``NodeIdentity/requestWindowSeconds`` of ours,
/// and the signature its key's over the method, the request target, its ID and the time. The
/// join token opens nothing over HTTP: a holder of it cannot upload as another node.
struct NodeRequestVerifier: Sendable {
    let database: AppDatabase

    /// The verified NodeID; unauthorized otherwise.
    func nodeID(of request: Request) async throws -> String {
        guard let header = request.headers[.authorization], let (nodeID, time, signature) = NodeIdentity.parseRequestAuthorization(header)
        else { throw CodError(.unauthorized, "compute nodes sign their requests (Authorization: CodNode ...)") }
        let now = nowNanos() / 1_000_000_000
        guard abs(now - time) <= NodeIdentity.requestWindowSeconds else {
            throw CodError(.unauthorized, "the request's signature time is \(now - time) s off this orchestrator's clock", hint: "synchronize the clocks (NTP)")
        }
        guard let keyText = try await database.nodeKey(nodeID: nodeID), let key = NodeIdentity.publicKey(keyText) else {
            throw CodError(.unauthorized, "node \(nodeID.prefix(80)) is not enrolled here")
        }
        let payload = NodeIdentity.requestPayload(method: request.method.rawValue, target: request.uri.string, nodeID: nodeID, time: time)
        guard NodeIdentity.verify(signature: signature, of: payload, by: key) else {
            throw CodError(.unauthorized, "the request is not signed by node \(nodeID.prefix(80))'s key")
        }
        return nodeID
    }
}

/// Lets only signed requests of enrolled compute nodes through, recording which node called.
struct NodeAuthentication: RouterMiddleware {
    typealias Context = OrchestratorContext
    let verifier: NodeRequestVerifier

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.caller = .node(try await verifier.nodeID(of: request))
        return try await next(request, context)
    }
}
