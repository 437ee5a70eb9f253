public import Crypto
public import Foundation
import SafeFS

/// An Ed25519 key kept in a file only its owner may read (0600 from creation): a compute
/// node's identity (`<data>/compute/node.key`) or the orchestrator's (`orchestrator.key`).
/// Sandboxes never see these files: executions run in folders of their own.
public enum SigningKeyFile {
    /// The key in `file`, or a new one written there.
    public static func loadOrCreate(at file: URL) throws -> Curve25519.Signing.PrivateKey {
        let text = try SecretFile.readOrCreate(at: file) { Curve25519.Signing.PrivateKey().rawRepresentation.base64EncodedString() }
        guard let raw = Data(base64Encoded: text), let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw SecretFile.Failure(
                description: "\(file.path) does not hold an Ed25519 key; moving it away makes a new identity (peers that knew the old one refuse it)")
        }
        return key
    }
}
