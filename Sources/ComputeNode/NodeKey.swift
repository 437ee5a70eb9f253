import Crypto
import Foundation
import SafeFS
import Wire

/// The node's Ed25519 key, in `<data>/node.key` (0600 from creation). The sandboxes never see
/// the data folder's top level: executions run in folders of their own under it.
enum NodeKey {
    static func loadOrCreate(in directory: URL) throws -> Curve25519.Signing.PrivateKey {
        let file = directory.appendingPathComponent("node.key")
        let text = try SecretFile.readOrCreate(at: file) { Curve25519.Signing.PrivateKey().rawRepresentation.base64EncodedString() }
        guard let raw = Data(base64Encoded: text), let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw SecretFile.Failure(description: "\(file.path) does not hold a node key; move it away to make a new one (the node then joins as new)")
        }
        return key
    }
}
