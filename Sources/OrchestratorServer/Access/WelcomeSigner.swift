import Crypto
import Foundation
import Wire

/// The orchestrator's signing key, held as its raw bytes (the key type is not `Sendable`).
struct WelcomeSigner: Sendable {
    private let raw: Data
    /// The public key, base64, as welcomes carry it.
    let publicKey: String

    init(_ key: Curve25519.Signing.PrivateKey) {
        raw = key.rawRepresentation
        publicKey = NodeIdentity.encode(key.publicKey)
    }

    /// The signature of `payload`, base64.
    func sign(_ payload: Data) throws -> String {
        try Curve25519.Signing.PrivateKey(rawRepresentation: raw).signature(for: payload).base64EncodedString()
    }
}
