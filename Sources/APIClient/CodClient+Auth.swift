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
