public import Crypto
public import Foundation

/// A compute node's identity: an Ed25519 key pair made at its first start. Its NodeID is
/// derived from the public key; its hello proves possession of the private key by signing a
/// single-use challenge the orchestrator issued. (Key generation, which needs randomness,
/// happens in the node; here is only what both sides compute.)
public enum NodeIdentity {
    /// The NodeID of a public key: `n-` and the first 16 bytes of its SHA-256, in UUID form.
    public static func nodeID(publicKey: Curve25519.Signing.PublicKey) -> String {
        let hex = Array(SHA256.hash(data: publicKey.rawRepresentation)).prefix(16).map { String(format: "%02x", $0) }.joined()
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
