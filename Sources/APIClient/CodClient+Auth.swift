public import Models
public import Wire

extension CodClient {
    /// Which authentication methods the API offers (open: needs no credentials).
    public func authConfig() async throws -> AuthConfigResponse {
        try await get("/api/v1/agent/authconfig")
    }

    /// Who this client's credentials name.
    public func whoAmI() async throws -> WhoAmIResponse {
        try await get("/api/v1/auth/whoami")
    }

    public func users() async throws -> [UserInfo] {
        let page: ListResponse<UserInfo> = try await get("/api/v1/auth/users")
        return page.items
    }

    /// Adds a user; the response carries its API key, shown this once.
    public func createUser(_ request: CreateUserRequest) async throws -> CreateUserResponse {
        try await send(.POST, "/api/v1/auth/users", body: request)
    }

    public func removeUser(_ name: String) async throws {
        let _: [String: String] = try await send(.DELETE, "/api/v1/auth/users/\(escape(name))", body: Optional<String>.none)
    }
}

extension CodClient {
    public func joinTokens() async throws -> [JoinTokenInfo] {
        let page: ListResponse<JoinTokenInfo> = try await get("/api/v1/orchestrator/join-tokens")
        return page.items
    }

    /// Makes a join token; the response carries its secret, shown this once.
    public func createJoinToken(name: String, expiresInSeconds: Int64?) async throws -> CreateJoinTokenResponse {
        try await send(.POST, "/api/v1/orchestrator/join-tokens", body: CreateJoinTokenRequest(name: name, expiresInSeconds: expiresInSeconds))
    }

    /// Revokes a join token by ID or unique prefix; nodes it enrolled stay enrolled.
    public func revokeJoinToken(_ id: String) async throws -> JoinTokenInfo {
        try await send(.DELETE, "/api/v1/orchestrator/join-tokens/\(escape(id))", body: Optional<String>.none)
    }
}
