public import Crypto
public import Foundation
import Wire

/// An Ed25519 signing key held as its raw bytes (the key type is not `Sendable`): the
/// orchestrator's, which signs welcomes, and a compute node's, which signs its hellos and HTTP
/// requests.
public struct KeySigner: Sendable {
    private let raw: Data
    /// The public key, base64, as messages carry it.
    public let publicKey: String

    public init(_ key: Curve25519.Signing.PrivateKey) {
        raw = key.rawRepresentation
        publicKey = NodeIdentity.encode(key.publicKey)
    }

    /// The signature of `payload`, base64.
    public func sign(_ payload: Data) throws -> String {
        try Curve25519.Signing.PrivateKey(rawRepresentation: raw).signature(for: payload).base64EncodedString()
    }
}
