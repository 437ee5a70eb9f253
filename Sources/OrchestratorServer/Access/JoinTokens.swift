import Foundation
import Hummingbird
import Models
import NodeAPI
import StateStore
import Wire

/// Join tokens: each enrolls new compute nodes until it expires or is revoked. The secret is
/// 256 random bits, kept only as its SHA-256 and found by that hash, so the lookup compares
/// digests, never the secret itself (what timing could tell is a digest's prefix, which says
/// nothing about the secret). Enrolled nodes reconnect with their key: revoking the token
/// that enrolled them changes nothing for them.
struct JoinTokenService: Sendable {
    let database: AppDatabase

    enum Admission {
        case admitted(JoinTokenInfo)
        case refused(String)
    }

    static func newSecret() -> String { "codjoin_" + Base64URL.encode(Credentials.randomBytes(32)) }
    static func newID() -> String { "jt-" + Credentials.randomBytes(5).hexString }

    /// Lists the token the orchestrator started with (as `startup`) beside the ones made here.
    func registerStartupToken(_ secret: String, now: Int64) throws {
        try database.ensureStartupJoinToken(hash: Credentials.keyHash(secret), id: Self.newID(), now: now)
    }

    static let maxLifetimeSeconds: Int64 = 10 * 365 * 86400

    func create(name: String, expiresInSeconds: Int64?, by user: String, now: Int64) async throws -> CreateJoinTokenResponse {
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw CodError(.badRequest, "a join token's name is 1 to 64 letters, digits, '-', '_' or '.'", hint: "e.g. cod node token create --name rack-3")
        }
        let lifetime = expiresInSeconds ?? 0
        guard lifetime == 0 || (1...Self.maxLifetimeSeconds).contains(lifetime) else {
            throw CodError(.badRequest, "a join token expires after 1 second to 10 years (or never, 0); got \(lifetime) s")
        }
        let secret = Self.newSecret()
        let token = JoinTokenInfo(
            id: Self.newID(), name: name, createdBy: user, createTime: now, expireTime: lifetime == 0 ? 0 : now + lifetime * 1_000_000_000)
        try await database.createJoinToken(token, hash: Credentials.keyHash(secret))
        return CreateJoinTokenResponse(token: token, secret: secret)
    }

    /// Whether `presented` may enroll a new node now, and if not, why (said to the node's log
    /// and the orchestrator's, never the secret).
    func admit(_ presented: String, now: Int64) async throws -> Admission {
        guard !presented.isEmpty, presented.utf8.count <= 256, let token = try await database.joinToken(hash: Credentials.keyHash(presented)) else {
            return .refused("invalid join token")
        }
        switch token.state(now: now) {
        case .revoked: return .refused("join token \(token.id) (\(token.name)) was revoked: \(token.revokeReason)")
        case .expired: return .refused("join token \(token.id) (\(token.name)) expired at \(RFC3339.format(nanos: token.expireTime))")
        case .active: return .admitted(token)
        }
    }
}

/// `/api/v1/orchestrator/join-tokens` (admin only, see ``AccessPolicy``): list, create, revoke.
struct JoinTokenRoutes {
    let tokens: JoinTokenService

    var collection: RouteCollection<OrchestratorContext> {
        let routes = RouteCollection(context: OrchestratorContext.self)
        let tokens = self.tokens
        routes.get { _, _ in try APIResponse.json(ListResponse(items: try await tokens.database.joinTokens())) }
        routes.post { request, context in
            let body = try await request.body.collect(upTo: 1 << 16)
            let create = try RequestDecoding.decode(CreateJoinTokenRequest.self, json: Data(buffer: body))
            let response = try await tokens.create(
                name: create.name, expiresInSeconds: create.expiresInSeconds, by: context.principal?.name ?? "admin", now: nowNanos())
            return try APIResponse.json(response, status: .created)
        }
        routes.delete(":id") { _, context in
            let id = try context.parameters.require("id")
            guard let token = try await tokens.database.revokeJoinToken(
                id: id, reason: "revoked by \(context.principal?.name ?? "admin")", now: nowNanos())
            else {
                throw CodError(.notFound, "no join token \(id.prefix(64))", hint: "cod node token list shows them")
            }
            return try APIResponse.json(token)
        }
        return routes
    }
}
