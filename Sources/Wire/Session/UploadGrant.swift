public import Foundation

/// What the orchestrator lets one upload to one compute node do: store one DAG (`Root`) of at
/// most `MaxBytes`, pinned for `Holder` (a dataset's), until `Expires`. A user asks the
/// orchestrator for it and sends it to the node as `Authorization: CodGrant <token>`; the node
/// checks the orchestrator's signature with the key it enrolled with, so it needs no user
/// accounts and never sees a user's API key.
public struct UploadGrant: Codable, Sendable, Equatable {
    /// `ug-` and 10 hex digits, for logs.
    public var id: String
    public var nodeID: String
    public var root: String
    public var holder: String
    public var maxBytes: Int
    /// Unix seconds.
    public var expires: Int64

    public init(id: String, nodeID: String, root: String, holder: String, maxBytes: Int, expires: Int64) {
        self.id = id
        self.nodeID = nodeID
        self.root = root
        self.holder = holder
        self.maxBytes = maxBytes
        self.expires = expires
    }

    enum CodingKeys: String, CodingKey {
        case id = "ID", nodeID = "NodeID", root = "Root", holder = "Holder", maxBytes = "MaxBytes", expires = "Expires"
    }

    /// The `Authorization` scheme a grant travels in.
    public static let scheme = "CodGrant"
    /// The longest a grant may be asked to live, in seconds (it is checked when the upload
    /// starts, so it only needs to outlive the request's start).
    public static let maxLifetimeSeconds: Int64 = 3600
    /// The largest CAR a compute node takes in one upload.
    public static let maxUploadBytes = 8 << 30
    /// The longest token a node reads.
    static let maxTokenBytes = 2048

    /// What the orchestrator signs: a domain tag and the claims exactly as they travel.
    static func signedPayload(_ claims: Data) -> Data {
        Data("cod-upload-grant-v1\u{0}".utf8) + claims
    }

    /// The token: the claims (JSON) and the orchestrator's signature, each base64url, joined by a dot.
    public func token(sign: (Data) throws -> String) throws -> String {
        let claims = try CanonicalJSON.encode(self)
        let signature = try sign(Self.signedPayload(claims))
        guard let raw = Data(base64Encoded: signature) else { throw GrantError("the signer returned no base64 signature") }
        return Base64URL.encode(claims) + "." + Base64URL.encode(raw)
    }

    /// Why a token is not a grant this node may honour.
    public struct GrantError: Error, CustomStringConvertible, Equatable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The grant in an `Authorization: CodGrant <token>` value, checked against the
    /// orchestrator's key (base64), for `nodeID`, at `now` (Unix seconds). The claims are read
    /// only after the signature is found good.
    public static func verify(header: String, orchestratorKey: String, nodeID: String, now: Int64) throws -> UploadGrant {
        guard header.hasPrefix(scheme + " ") else { throw GrantError("not a \(scheme) authorization") }
        let token = header.dropFirst(scheme.count + 1)
        guard token.utf8.count <= maxTokenBytes else { throw GrantError("the upload grant is over \(maxTokenBytes) bytes") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let claims = Base64URL.decode(String(parts[0])), let signature = Base64URL.decode(String(parts[1])) else {
            throw GrantError("the upload grant is not two base64url parts joined by a dot")
        }
        guard let key = NodeIdentity.publicKey(orchestratorKey),
              NodeIdentity.verify(signature: signature.base64EncodedString(), of: signedPayload(claims), by: key)
        else { throw GrantError("the upload grant is not signed by the orchestrator this node enrolled with") }
        let grant: UploadGrant
        do {
            grant = try JSONDecoder().decode(UploadGrant.self, from: claims)
        } catch {
            throw GrantError("the upload grant's claims cannot be read: \(error)")
        }
        guard grant.nodeID == nodeID else {
            throw GrantError("upload grant \(grant.id.prefix(20)) is for node \(grant.nodeID.prefix(80)), not this one (\(nodeID))")
        }
        guard now <= grant.expires else {
            throw GrantError("upload grant \(grant.id.prefix(20)) expired \(now - grant.expires) s ago by this node's clock")
        }
        return grant
    }
}

/// `POST /api/v1/orchestrator/datasets/grants`: a grant to upload one shard to one node.
public struct UploadGrantRequest: Codable, Sendable {
    public var nodeID: String
    public var root: String
    public var holder: String
    public var bytes: Int
    /// How long the grant lives; nil for the default (10 minutes).
    public var seconds: Int64?

    public init(nodeID: String, root: String, holder: String, bytes: Int, seconds: Int64? = nil) {
        self.nodeID = nodeID
        self.root = root
        self.holder = holder
        self.bytes = bytes
        self.seconds = seconds
    }

    enum CodingKeys: String, CodingKey { case nodeID = "NodeID", root = "Root", holder = "Holder", bytes = "Bytes", seconds = "Seconds" }
}

public struct UploadGrantResponse: Codable, Sendable {
    public var grant: UploadGrant
    /// What the node is sent: `Authorization: CodGrant <Token>`.
    public var token: String

    public init(grant: UploadGrant, token: String) {
        self.grant = grant
        self.token = token
    }

    enum CodingKeys: String, CodingKey { case grant = "Grant", token = "Token" }
}
