import ContentAddressing
public import Foundation
public import Wire

/// Checks receipts offline: the envelope's signature with the signer's key, its CID from its
/// exact bytes, and, over one node's receipts, that the `Prev` chain has no gap and no fork.
public enum ReceiptCheck {
    public struct Checked: Sendable {
        public var cid: String
        public var signer: String
        public var execution: ExecutionReceipt?
        public var job: JobReceipt?
    }

    public static func cid(of bytes: Data) -> String {
        CID(v1: CID.raw, multihash: .sha256(Array(bytes))).description
    }

    /// Verifies one envelope (its exact bytes) against `keys` (signer → base64 Ed25519 key).
    public static func verify(_ bytes: Data, keys: [String: String]) throws -> Checked {
        let envelope = try DSSEEnvelope.decode(bytes)
        guard let signer = envelope.signatures.first?.keyid else { throw DSSEEnvelope.Failure("the envelope has no signature") }
        guard let key = keys[signer] else {
            throw DSSEEnvelope.Failure("no key for signer \(signer.prefix(80)); give its key (cod node list --output json has every node's PublicKey)")
        }
        let payload = try envelope.verifiedPayload(key: key)
        var checked = Checked(cid: cid(of: bytes), signer: signer)
        switch envelope.payloadType {
        case ExecutionReceipt.payloadType:
            let receipt = try JSONDecoder().decode(ExecutionReceipt.self, from: payload)
            guard receipt.nodeID == signer else { throw DSSEEnvelope.Failure("the receipt names node \(receipt.nodeID) but \(signer) signed it") }
            checked.execution = receipt
        case JobReceipt.payloadType:
            checked.job = try JSONDecoder().decode(JobReceipt.self, from: payload)
        default:
            throw DSSEEnvelope.Failure("unknown payload type \(envelope.payloadType.prefix(80))")
        }
        return checked
    }

    /// What is wrong with one node's receipts as a chain: two receipts after the same one (a
    /// fork), a `Prev` that is none of them (a gap, when the chain is meant to be whole), more
    /// than one start.
    public static func chainProblems(_ receipts: [(cid: String, receipt: ExecutionReceipt)]) -> [String] {
        var problems: [String] = []
        let cids = Set(receipts.map(\.cid))
        let byPrev = Dictionary(grouping: receipts, by: \.receipt.prev)
        for (prev, next) in byPrev where next.count > 1 {
            problems.append("\(next.count) receipts follow \(prev.isEmpty ? "the start" : prev): \(next.map(\.cid).joined(separator: ", "))")
        }
        let starts = receipts.filter { $0.receipt.prev.isEmpty || !cids.contains($0.receipt.prev) }
        if starts.count > 1 {
            problems.append("the chain has \(starts.count) starts, so receipts are missing before: \(starts.map(\.cid).joined(separator: ", "))")
        }
        return problems
    }
}
