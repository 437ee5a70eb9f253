public import Crypto
public import Foundation

/// A compute node's identity: an Ed25519 key pair made at its first start. Its NodeID is
/// derived from the public key; its hello proves possession of the private key by signing a
/// single-use challenge the orchestrator issued. (Key generation, which needs randomness,
/// happens in the node; here is only what both sides compute.)
public enum NodeIdentity {
    /// The NodeID of a public key: `n-` and the first 16 bytes of its SHA-256, in UUID form.
    public static func nodeID(publicKey: Curve25519.Signing.PublicKey) -> String {
        let hex = SHA256.hash(data: publicKey.rawRepresentation).prefix(16).hexString
        let parts = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
        return "n-" + parts.map(String.init).joined(separator: "-")
    }

    /// What a hello signs: a domain tag, the challenge, the node's ID and its session, so a
    /// signature cannot be replayed for another node, session or connection.
    public static func helloPayload(challenge: String, nodeID: String, session: String) -> Data {
        Data("cod-node-hello-v1\u{0}\(challenge)\u{0}\(nodeID)\u{0}\(session)".utf8)
    }

    /// What a welcome signs: a domain tag, the nonce of the hello it answers, the node's ID and
    /// its session.
    public static func welcomePayload(nonce: String, nodeID: String, session: String) -> Data {
        Data("cod-orchestrator-welcome-v1\u{0}\(nonce)\u{0}\(nodeID)\u{0}\(session)".utf8)
    }

    /// The `Authorization` scheme of a compute node's HTTP requests:
    /// `CodNode <NodeID>:<Unix seconds>:<signature of requestPayload, base64>`.
    public static let requestScheme = "CodNode"

    /// How long a signed request stays good, either side of the orchestrator's clock.
    public static let requestWindowSeconds: Int64 = 300

    /// What a node's HTTP request signs: a domain tag, the method, the request target (path
    /// and query, so a signed upload cannot be moved to another execution or holder), the
    /// NodeID and the time.
    public static func requestPayload(method: String, target: String, nodeID: String, time: Int64) -> Data {
        Data("cod-node-request-v1\u{0}\(method)\u{0}\(target)\u{0}\(nodeID)\u{0}\(time)".utf8)
    }

    /// The parts of a `CodNode` authorization value; nil when it is not one.
    public static func parseRequestAuthorization(_ header: String) -> (nodeID: String, time: Int64, signature: String)? {
        guard header.hasPrefix(requestScheme + " "), header.utf8.count <= 512 else { return nil }
        let parts = header.dropFirst(requestScheme.count + 1).split(separator: ":", maxSplits: 2).map(String.init)
        guard parts.count == 3, !parts[0].isEmpty, let time = Int64(parts[1]) else { return nil }
        return (parts[0], time, parts[2])
    }

    public static func encode(_ key: Curve25519.Signing.PublicKey) -> String {
        key.rawRepresentation.base64EncodedString()
    }

    /// A public key from its base64 form; nil for anything that is not one.
    public static func publicKey(_ text: String) -> Curve25519.Signing.PublicKey? {
        guard text.utf8.count <= 64, let raw = Data(base64Encoded: text) else { return nil }
        return try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
    }

    /// Whether `signature` (base64) is `key`'s signature of `payload`.
    public static func verify(signature: String, of payload: Data, by key: Curve25519.Signing.PublicKey) -> Bool {
        guard signature.utf8.count <= 128, let raw = Data(base64Encoded: signature) else { return false }
        return key.isValidSignature(raw, for: payload)
    }
}
