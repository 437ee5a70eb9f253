public import Models

/// `POST /api/v1/auth/users`: a user with a new API key, or with a password.
public struct CreateUserRequest: Codable, Sendable {
    public var name: String
    public var capabilities: [Capability]
    /// Set for a password user (HTTP Basic); absent for a key user.
    public var password: String?

    public init(name: String, capabilities: [Capability], password: String? = nil) {
        self.name = name
        self.capabilities = capabilities
        self.password = password
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name", capabilities = "Capabilities", password = "Password"
    }
}

/// The user made, and its API key: shown this once, stored only as a hash.
public struct CreateUserResponse: Codable, Sendable {
    public var user: UserInfo
    public var apiKey: String?

    public init(user: UserInfo, apiKey: String?) {
        self.user = user
        self.apiKey = apiKey
    }

    enum CodingKeys: String, CodingKey {
        case user = "User", apiKey = "APIKey"
    }
}

/// `GET /api/v1/auth/whoami`: who the credentials name and what they allow.
public struct WhoAmIResponse: Codable, Sendable {
    public var name: String
    public var capabilities: [Capability]

    public init(name: String, capabilities: [Capability]) {
        self.name = name
        self.capabilities = capabilities
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name", capabilities = "Capabilities"
    }
}

/// `GET /api/v1/agent/authconfig`: how a client may authenticate here (open, so a client
/// can learn it before it has credentials).
public struct AuthConfigResponse: Codable, Sendable {
    /// `apikey` (Authorization: Bearer) and `basic` (user and password).
    public var methods: [String]
    /// Whether `GET /ipfs/...` is readable without credentials.
    public var gatewayOpen: Bool

    public init(methods: [String], gatewayOpen: Bool) {
        self.methods = methods
        self.gatewayOpen = gatewayOpen
    }

    enum CodingKeys: String, CodingKey {
        case methods = "Methods", gatewayOpen = "GatewayOpen"
    }
}
