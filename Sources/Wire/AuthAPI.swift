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

/// A join token as the orchestrator lists it: never the token itself, which is stored only
/// as its SHA-256 and shown once, when it is made.
public struct JoinTokenInfo: Codable, Sendable, Hashable {
    public var id: String
    public var name: String
    /// Who made it (a user), or ``startupCreator`` for the token the orchestrator was started with.
    public var createdBy: String
    public var createTime: Int64
    /// When it stops enrolling nodes (Unix nanoseconds); 0 for never.
    public var expireTime: Int64
    /// When it was revoked; 0 while it is not.
    public var revokeTime: Int64
    /// Why it was revoked (`revoked by NAME`, or replaced by a new startup token).
    public var revokeReason: String
    /// Nodes it has enrolled, and when it last did.
    public var enrollments: Int
    public var lastUsedTime: Int64

    public init(id: String, name: String, createdBy: String, createTime: Int64, expireTime: Int64) {
        self.id = id
        self.name = name
        self.createdBy = createdBy
        self.createTime = createTime
        self.expireTime = expireTime
        self.revokeTime = 0
        self.revokeReason = ""
        self.enrollments = 0
        self.lastUsedTime = 0
    }

    /// The creator of the token the orchestrator was started with: not a valid user name
    /// (user names have no parentheses), so no user's token is ever taken for it.
    public static let startupCreator = "(startup)"

    public var isStartupToken: Bool { createdBy == Self.startupCreator }

    public enum State: String, Sendable {
        case active, expired, revoked
    }

    public func state(now: Int64) -> State {
        if revokeTime > 0 { return .revoked }
        if expireTime > 0 && now >= expireTime { return .expired }
        return .active
    }

    enum CodingKeys: String, CodingKey {
        case id = "ID", name = "Name", createdBy = "CreatedBy", createTime = "CreateTime", expireTime = "ExpireTime"
        case revokeTime = "RevokeTime", revokeReason = "RevokeReason", enrollments = "Enrollments", lastUsedTime = "LastUsedTime"
    }
}

/// `POST /api/v1/orchestrator/join-tokens`.
public struct CreateJoinTokenRequest: Codable, Sendable {
    public var name: String
    /// Seconds until it stops enrolling nodes; nil or 0 for never.
    public var expiresInSeconds: Int64?

    public init(name: String, expiresInSeconds: Int64?) {
        self.name = name
        self.expiresInSeconds = expiresInSeconds
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name", expiresInSeconds = "ExpiresInSeconds"
    }
}

/// The token made, and its secret: shown this once.
public struct CreateJoinTokenResponse: Codable, Sendable {
    public var token: JoinTokenInfo
    public var secret: String

    public init(token: JoinTokenInfo, secret: String) {
        self.token = token
        self.secret = secret
    }

    enum CodingKeys: String, CodingKey {
        case token = "Token", secret = "Secret"
    }
}
