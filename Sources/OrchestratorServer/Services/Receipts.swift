import BlockStore
import ContentAddressing
import Foundation
import Models
import NodeAPI
import StateStore
import Wire

extension Orchestrator {
    /// Checks the receipt a node sent with a report (signed by its enrolled key, for this
    /// execution and node) and keeps its exact bytes as a raw block, pinned with the
    /// execution's result. Returns its CID; nil when there is none or it does not verify
    /// (logged: the report itself still counts).
    func keepReceipt(of message: NodeMessage, from nodeID: String) async -> String? {
        let (executionID, text): (String, String?) = switch message {
        case .runResult(let result): (result.executionID, result.receipt)
        case .computeError(let error): (error.executionID, error.receipt)
        default: ("", nil)
        }
        guard let text else { return nil }
        do {
            guard text.utf8.count <= 2 << 20, let bytes = Data(base64Encoded: text) else {
                throw DSSEEnvelope.Failure("the receipt is not base64 (or over 1 MiB)")
            }
            let envelope = try DSSEEnvelope.decode(bytes)
            guard envelope.payloadType == ExecutionReceipt.payloadType else {
                throw DSSEEnvelope.Failure("payload type \(envelope.payloadType.prefix(80)) is not \(ExecutionReceipt.payloadType)")
            }
            guard let key = try await database.nodeKey(nodeID: nodeID) else { throw DSSEEnvelope.Failure("the node has no enrolled key") }
            let receipt = try JSONDecoder().decode(ExecutionReceipt.self, from: try envelope.verifiedPayload(key: key))
            guard receipt.nodeID == nodeID, receipt.executionID == executionID else {
                throw DSSEEnvelope.Failure("it is for execution \(receipt.executionID.prefix(80)) on node \(receipt.nodeID.prefix(80))")
            }
            let cid = CID(v1: CID.raw, multihash: .sha256(Array(bytes)))
            try withContent {
                try store.guardingFromGC {
                    try store.put(cid, Array(bytes))
                    // Held by the node's chain: every receipt it signed stays verifiable.
                    try store.pinUnguarded(cid, holder: PinHolder.receipts(of: nodeID))
                }
            }
            if !(try await database.recordReceipt(cid: cid.description, nodeID: nodeID, executionID: executionID, prev: receipt.prev, now: nowNanos())) {
                logger.warning("node \(shortID(nodeID))'s receipt \(cid) does not follow the last one recorded from it (a gap or a fork in its chain)")
            }
            return cid.description
        } catch {
            logger.warning("node \(shortID(nodeID)) sent a receipt for \(shortID(executionID)) that is refused: \(error)")
            return nil
        }
    }

    /// Every receipt a node sent, in the order they came, with its key.
    func receipts(ofNode nodeID: String) async throws -> JobReceiptsResponse {
        var stored: [StoredReceipt] = []
        for (text, executionID) in try await database.receipts(nodeID: nodeID) {
            guard let cid = try? CID(text), let block = try? store.get(cid) else { continue }
            stored.append(StoredReceipt(cid: text, signer: nodeID, executionID: executionID, envelope: Data(block).base64EncodedString()))
        }
        var keys: [String: String] = [:]
        keys[nodeID] = try await database.nodeKey(nodeID: nodeID)
        return JobReceiptsResponse(job: nil, executions: stored, keys: keys)
    }

    /// The job's receipts: the orchestrator's, signed now over what the store says (the same
    /// bytes, and so the same CID, each time for the same state), and every execution's.
    func receipts(of job: Job) async throws -> JobReceiptsResponse {
        let executions = try await database.executions(jobID: job.id).filter { $0.jobVersion == job.version }
            .sorted { ($0.createTime, $0.id) < ($1.createTime, $1.id) }
        var keys: [String: String] = ["orchestrator": identity.publicKey]
        var stored: [StoredReceipt] = []
        for execution in executions {
            guard let text = execution.receipt, let cid = try? CID(text), let block = try? store.get(cid) else { continue }
            stored.append(StoredReceipt(cid: text, signer: execution.nodeID, executionID: execution.id, envelope: Data(block).base64EncodedString()))
            if keys[execution.nodeID] == nil { keys[execution.nodeID] = try await database.nodeKey(nodeID: execution.nodeID) }
        }
        let resultCIDs = (try await results.results(jobID: job.id, baseURL: "")).compactMap { $0.params["CID"]?.stringValue }
        var outcome: JobReceipt.VerificationOutcome?
        let report = VerificationReport.of(job, executions: executions, store: store)
        if !report.partitions.isEmpty {
            outcome = .init(mode: job.verification?.mode.rawValue ?? "", accepted: report.partitions.map { partition in
                let accepted = partition.groups.first { $0.key == partition.acceptedKey }
                return .init(
                    partition: partition.partition, key: partition.acceptedKey, valid: accepted?.executions.map(\.executionID) ?? [],
                    invalid: partition.groups.filter { $0.key != partition.acceptedKey }.flatMap { $0.executions.map(\.executionID) })
            })
        }
        let receipt = JobReceipt(
            jobID: job.id, jobVersion: job.version, state: job.state.stateType.rawValue, resultCIDs: resultCIDs,
            executions: stored.map(\.cid), verification: outcome, issuedAt: RFC3339.format(nanos: job.modifyTime))
        let bytes = try DSSEEnvelope.sign(payload: try receipt.payload(), type: JobReceipt.payloadType, keyid: "orchestrator", sign: identity.sign)
            .encoded()
        let cid = CID(v1: CID.raw, multihash: .sha256(Array(bytes)))
        if job.state.stateType.isTerminal {
            try withContent {
                try store.guardingFromGC {
                    try store.put(cid, Array(bytes))
                    try store.pinUnguarded(cid, holder: PinHolder.result(of: job.id))
                }
            }
        }
        return JobReceiptsResponse(
            job: StoredReceipt(cid: cid.description, signer: "orchestrator", executionID: nil, envelope: bytes.base64EncodedString()),
            executions: stored, keys: keys)
    }
}
