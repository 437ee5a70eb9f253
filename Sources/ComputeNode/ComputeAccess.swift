import Crypto
import Foundation
import Hummingbird
import Models
import SafeFS
import Synchronization
import Wire

/// Who is calling a compute node's own API.
enum ComputeCaller: Sendable {
    /// No credentials: only the open routes (gateway, agent, listings) get this far.
    case anonymous
    /// The node's operator, with the node's own API key (`<data>/api.key`).
    case owner
    /// A user with a grant the orchestrator signed for one upload to this node.
    case grant(UploadGrant)
}

/// Who may use a compute node's own API. The trustless gateway, the agent routes and
/// listings stay open, so peers fetch inputs from it; every write (uploads, pins, `gc`) and the
/// store's statistics need the node's own API key, except an upload carrying a grant the
/// orchestrator this node enrolled with signed for this node, that root and that holder. The
/// node has no user accounts and never sees a user's key.
final class ComputeAccess: Sendable {
    let nodeID: String
    /// Where the node's API key is (shown in refusals, so an operator knows where to look).
    let keyFile: URL
    /// The orchestrator's public key, kept at its first welcome.
    let orchestratorKeyFile: URL
    private let keyDigest: [UInt8]
    /// Grants already presented, with their expiry: each one is good for one upload.
    private let usedGrants = Mutex<[String: Int64]>([:])

    enum Requirement: Sendable, Equatable {
        case open
        /// The node's key, or an upload grant.
        case upload
        /// The node's key.
        case owner
    }

    /// Reads the node's API key from `<data>/api.key`, making one (0600 from creation) at
    /// first start; only its digest is kept in memory.
    init(nodeID: String, dataDirectory: URL) throws {
        self.nodeID = nodeID
        keyFile = dataDirectory.appendingPathComponent("api.key")
        orchestratorKeyFile = dataDirectory.appendingPathComponent("orchestrator.pub")
        let key = try SecretFile.readOrCreate(at: keyFile) {
            "codnode_" + Base64URL.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        }
        keyDigest = Array(SHA256.hash(data: Data(key.utf8)))
    }

    static func requirement(method: HTTPRequest.Method, path: String) -> Requirement {
        let reading = method == .get || method == .head
        if reading, path.hasPrefix("/ipfs/") || path.hasPrefix("/api/v1/agent/") || path.hasPrefix("/api/v1/data/ls/") { return .open }
        if method == .put, path == "/api/v1/data/car" { return .upload }
        return .owner
    }

    /// The caller a request's credentials prove; unauthorized for credentials that prove none.
    func caller(of request: Request, now: Int64) throws -> ComputeCaller {
        guard let header = request.headers[.authorization] else { return .anonymous }
        if header.hasPrefix("Bearer ") {
            // Digests of equal length, compared without stopping at the first difference.
            let presented = Array(SHA256.hash(data: Data(header.dropFirst(7).utf8)))
            guard zip(presented, keyDigest).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0 else {
                throw CodError(
                    .unauthorized, "that is not this node's API key",
                    hint: "a node takes its own key (\(keyFile.path) on the node), not the orchestrator's; datasets upload with cod data add --shards")
            }
            return .owner
        }
        if header.hasPrefix(UploadGrant.scheme + " ") {
            guard let orchestratorKey = try? String(contentsOf: orchestratorKeyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
                  !orchestratorKey.isEmpty
            else {
                throw CodError(.unauthorized, "this node has not enrolled with an orchestrator yet, so it can check no upload grant")
            }
            do {
                let grant = try UploadGrant.verify(header: header, orchestratorKey: orchestratorKey, nodeID: nodeID, now: now)
                try spend(grant, now: now)
                return .grant(grant)
            } catch let error as UploadGrant.GrantError {
                throw CodError(.unauthorized, error.description, hint: "ask the orchestrator for a new grant (cod data add --shards does)")
            }
        }
        throw CodError(.unauthorized, "a compute node takes Bearer <its API key> or CodGrant <an upload grant>")
    }

    /// Marks a grant used; refuses one that was.
    private func spend(_ grant: UploadGrant, now: Int64) throws {
        try usedGrants.withLock { used in
            used = used.filter { $0.value >= now }
            guard used[grant.id] == nil else { throw UploadGrant.GrantError("upload grant \(grant.id) was used already; each is good for one upload") }
            used[grant.id] = grant.expires
        }
    }
}

/// Lets a request through when its caller meets its route's requirement, recording the caller.
struct ComputeAccessControl: RouterMiddleware {
    typealias Context = ComputeRequestContext
    let access: ComputeAccess

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requirement = ComputeAccess.requirement(method: request.method, path: request.uri.path)
        // Open routes do not look at credentials: a peer fetching inputs sends none.
        guard requirement != .open else { return try await next(request, context) }
        var context = context
        context.caller = try access.caller(of: request, now: Int64(Date().timeIntervalSince1970))
        switch (context.caller, requirement) {
        case (.owner, _), (.grant, .upload): return try await next(request, context)
        case (.grant, _):
            throw CodError(.forbidden, "an upload grant uploads its one shard (PUT /api/v1/data/car) and does nothing else")
        case (.anonymous, _):
            throw CodError(
                .unauthorized, "\(request.method.rawValue) \(request.uri.path.prefix(100)) on a compute node needs the node's own API key",
                hint: "export COD_API_KEY=$(cat \(access.keyFile.path)) on the node; datasets upload with cod data add --shards")
        }
    }
}
