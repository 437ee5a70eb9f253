public import Foundation
public import Models

/// JSON with sorted keys and unescaped slashes: how receipts and their envelopes are written,
/// once, and then only ever moved as bytes.
public enum CanonicalJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}

/// A DSSE envelope (secure-systems-lab/dsse): a payload, its type, and signatures over the
/// pre-authentication encoding of both, so nothing is ever re-serialised to be verified.
public struct DSSEEnvelope: Codable, Sendable, Equatable {
    /// The payload, base64 (standard alphabet, padded).
    public var payload: String
    public var payloadType: String
    public var signatures: [Signature]

    public struct Signature: Codable, Sendable, Equatable {
        /// Who signed: a NodeID, or `orchestrator`. A hint only: verification uses the key given.
        public var keyid: String
        /// The Ed25519 signature, base64.
        public var sig: String

        public init(keyid: String, sig: String) {
            self.keyid = keyid
            self.sig = sig
        }
    }

    public init(payload: String, payloadType: String, signatures: [Signature]) {
        self.payload = payload
        self.payloadType = payloadType
        self.signatures = signatures
    }

    /// `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal bytes.
    public static func pae(type: String, body: Data) -> Data {
        let typeBytes = Data(type.utf8)
        return Data("DSSEv1 \(typeBytes.count) ".utf8) + typeBytes + Data(" \(body.count) ".utf8) + body
    }

    /// Signs `payload` (its exact bytes) as `type`.
    public static func sign(payload: Data, type: String, keyid: String, sign: (Data) throws -> String) throws -> DSSEEnvelope {
        DSSEEnvelope(
            payload: payload.base64EncodedString(), payloadType: type,
            signatures: [Signature(keyid: keyid, sig: try sign(pae(type: type, body: payload)))])
    }

    /// The envelope's bytes as stored and sent: JSON with sorted keys. A receipt's CID is the
    /// raw CID of exactly these bytes.
    public func encoded() throws -> Data {
        try CanonicalJSON.encode(self)
    }

    /// Why an envelope does not verify.
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The payload bytes, once some signature on the envelope is `key`'s over its PAE.
    public func verifiedPayload(key publicKey: String) throws -> Data {
        guard let key = NodeIdentity.publicKey(publicKey) else { throw Failure("the public key is not an Ed25519 key") }
        guard let body = Data(base64Encoded: payload) else { throw Failure("the payload is not base64") }
        let message = Self.pae(type: payloadType, body: body)
        guard signatures.contains(where: { NodeIdentity.verify(signature: $0.sig, of: message, by: key) }) else {
            throw Failure("no signature on the envelope is this key's over its payload and type")
        }
        return body
    }

    /// Reads an envelope from its bytes (at most 1 MiB).
    public static func decode(_ bytes: Data) throws -> DSSEEnvelope {
        guard bytes.count <= 1 << 20 else { throw Failure("a receipt envelope is at most 1 MiB, this is \(bytes.count) bytes") }
        do {
            return try JSONDecoder().decode(DSSEEnvelope.self, from: bytes)
        } catch {
            throw Failure("not a DSSE envelope: \(error)")
        }
    }
}

/// What a compute node signs for each execution it ran: what ran, on what, what came out, what
/// it used, and the CID of its previous receipt (a per-node hash chain, so a gap shows).
public struct ExecutionReceipt: Codable, Sendable, Equatable {
    public static let payloadType = "application/vnd.cod.receipt.v1+json"
    public static let version = "cod/receipt@1"

    public var version: String
    public var executionID: String
    public var jobID: String
    public var jobVersion: UInt64
    public var partitionIndex: Int
    public var nodeID: String
    /// The raw CID of the task spec exactly as the node ran it (its JSON, keys sorted).
    public var ran: String
    public var inputs: [Input]
    public var engine: Engine
    public var out: Outcome
    public var usage: Usage
    /// RFC 3339.
    public var startedAt: String
    public var finishedAt: String
    /// The CID of this node's previous receipt; empty for its first.
    public var prev: String

    public struct Input: Codable, Sendable, Equatable {
        public var target: String
        public var cid: String
        public init(target: String, cid: String) {
            self.target = target
            self.cid = cid
        }
        enum CodingKeys: String, CodingKey { case target = "Target", cid = "CID" }
    }

    public struct Engine: Codable, Sendable, Equatable {
        public var type: String
        public var artifact: String
        public init(type: String, artifact: String) {
            self.type = type
            self.artifact = artifact
        }
        enum CodingKeys: String, CodingKey { case type = "Type", artifact = "Artifact" }
    }

    public struct Outcome: Codable, Sendable, Equatable {
        /// Completed or Failed.
        public var state: String
        public var exitCode: Int?
        public var resultCID: String?
        public var error: String?
        public init(state: String, exitCode: Int?, resultCID: String?, error: String?) {
            self.state = state
            self.exitCode = exitCode
            self.resultCID = resultCID
            self.error = error
        }
        enum CodingKeys: String, CodingKey { case state = "State", exitCode = "ExitCode", resultCID = "ResultCID", error = "Error" }
    }

    /// What the execution used (`Models.Usage`, with network reads summed). CPU seconds and
    /// memory are nil where the node could not measure them; receipts from before metering
    /// have only wall time and bytes read.
    public struct Usage: Codable, Sendable, Equatable {
        public var wallSeconds: Double
        public var cpuSeconds: Double?
        public var peakMemoryBytes: UInt64?
        public var memoryGiBSeconds: Double?
        public var gpuSeconds: Double?
        public var bytesReadLocally: UInt64
        public var bytesReadOverNetwork: UInt64
        /// The part of `bytesReadOverNetwork` that came from outside the cluster.
        public var bytesReadFromOutside: UInt64?
        public var bytesPublished: UInt64?
        public var meteredBy: String?
        public init(wallSeconds: Double, cpuSeconds: Double? = nil, peakMemoryBytes: UInt64? = nil, bytesReadLocally: UInt64, bytesReadOverNetwork: UInt64) {
            self.wallSeconds = wallSeconds
            self.cpuSeconds = cpuSeconds
            self.peakMemoryBytes = peakMemoryBytes
            self.bytesReadLocally = bytesReadLocally
            self.bytesReadOverNetwork = bytesReadOverNetwork
        }
        public init(_ usage: Models.Usage) {
            self.init(
                wallSeconds: usage.wallSeconds, cpuSeconds: usage.cpuSeconds, peakMemoryBytes: usage.peakMemoryBytes,
                bytesReadLocally: usage.bytesReadLocally, bytesReadOverNetwork: usage.bytesReadFromPeers &+ usage.bytesReadFromOutside)
            memoryGiBSeconds = usage.memoryGiBSeconds
            gpuSeconds = usage.gpuSeconds
            bytesReadFromOutside = usage.bytesReadFromOutside
            bytesPublished = usage.bytesPublished
            meteredBy = usage.meteredBy
        }
        enum CodingKeys: String, CodingKey {
            case wallSeconds = "WallSeconds", cpuSeconds = "CPUSeconds", peakMemoryBytes = "PeakMemoryBytes"
            case memoryGiBSeconds = "MemoryGiBSeconds", gpuSeconds = "GPUSeconds"
            case bytesReadLocally = "BytesReadLocally", bytesReadOverNetwork = "BytesReadOverNetwork"
            case bytesReadFromOutside = "BytesReadFromOutside", bytesPublished = "BytesPublished", meteredBy = "MeteredBy"
        }
    }

    public init(
        executionID: String, jobID: String, jobVersion: UInt64, partitionIndex: Int, nodeID: String, ran: String, inputs: [Input],
        engine: Engine, out: Outcome, usage: Usage, startedAt: String, finishedAt: String, prev: String
    ) {
        self.version = Self.version
        self.executionID = executionID
        self.jobID = jobID
        self.jobVersion = jobVersion
        self.partitionIndex = partitionIndex
        self.nodeID = nodeID
        self.ran = ran
        self.inputs = inputs
        self.engine = engine
        self.out = out
        self.usage = usage
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.prev = prev
    }

    enum CodingKeys: String, CodingKey {
        case version = "Version", executionID = "ExecutionID", jobID = "JobID", jobVersion = "JobVersion", partitionIndex = "PartitionIndex"
        case nodeID = "NodeID", ran = "Ran", inputs = "Inputs", engine = "Engine", out = "Out", usage = "Usage"
        case startedAt = "StartedAt", finishedAt = "FinishedAt", prev = "Prev"
    }

    /// The payload bytes a node signs: JSON, keys sorted.
    public func payload() throws -> Data {
        try CanonicalJSON.encode(self)
    }
}

/// What the orchestrator signs for a job: its result, the receipts of the executions behind it,
/// and, for a verified job, how the replicas compared.
public struct JobReceipt: Codable, Sendable, Equatable {
    public static let payloadType = "application/vnd.cod.job-receipt.v1+json"

    public var version: String
    public var jobID: String
    public var jobVersion: UInt64
    public var state: String
    public var resultCIDs: [String]
    /// The CIDs of the execution receipts, in execution order.
    public var executions: [String]
    public var verification: VerificationOutcome?
    /// RFC 3339: when the job reached its state (so the receipt is the same however often it
    /// is asked for).
    public var issuedAt: String

    public struct VerificationOutcome: Codable, Sendable, Equatable {
        public var mode: String
        /// Per partition: the accepted result key and the executions that agreed on it.
        public var accepted: [AcceptedPartition]
        public init(mode: String, accepted: [AcceptedPartition]) {
            self.mode = mode
            self.accepted = accepted
        }
        enum CodingKeys: String, CodingKey { case mode = "Mode", accepted = "Accepted" }
    }

    public struct AcceptedPartition: Codable, Sendable, Equatable {
        public var partition: Int
        public var key: String?
        public var valid: [String]
        public var invalid: [String]
        public init(partition: Int, key: String?, valid: [String], invalid: [String]) {
            self.partition = partition
            self.key = key
            self.valid = valid
            self.invalid = invalid
        }
        enum CodingKeys: String, CodingKey { case partition = "Partition", key = "Key", valid = "Valid", invalid = "Invalid" }
    }

    public init(
        jobID: String, jobVersion: UInt64, state: String, resultCIDs: [String], executions: [String], verification: VerificationOutcome?,
        issuedAt: String
    ) {
        self.version = "cod/job-receipt@1"
        self.jobID = jobID
        self.jobVersion = jobVersion
        self.state = state
        self.resultCIDs = resultCIDs
        self.executions = executions
        self.verification = verification
        self.issuedAt = issuedAt
    }

    enum CodingKeys: String, CodingKey {
        case version = "Version", jobID = "JobID", jobVersion = "JobVersion", state = "State", resultCIDs = "ResultCIDs"
        case executions = "Executions", verification = "Verification", issuedAt = "IssuedAt"
    }

    public func payload() throws -> Data {
        try CanonicalJSON.encode(self)
    }
}

/// `GET /api/v1/orchestrator/jobs/{id}/receipts`: the job's receipt and its executions', each
/// as the exact envelope bytes (base64) with its CID, and the keys that verify them.
public struct JobReceiptsResponse: Codable, Sendable {
    public var job: StoredReceipt?
    public var executions: [StoredReceipt]
    /// Public keys (base64 Ed25519) by signer: NodeIDs and `orchestrator`.
    public var keys: [String: String]

    public init(job: StoredReceipt?, executions: [StoredReceipt], keys: [String: String]) {
        self.job = job
        self.executions = executions
        self.keys = keys
    }

    enum CodingKeys: String, CodingKey { case job = "Job", executions = "Executions", keys = "Keys" }
}

public struct StoredReceipt: Codable, Sendable {
    public var cid: String
    /// Who signed it: a NodeID, or `orchestrator`.
    public var signer: String
    public var executionID: String?
    /// The envelope's exact bytes, base64.
    public var envelope: String

    public init(cid: String, signer: String, executionID: String?, envelope: String) {
        self.cid = cid
        self.signer = signer
        self.executionID = executionID
        self.envelope = envelope
    }

    enum CodingKeys: String, CodingKey { case cid = "CID", signer = "Signer", executionID = "ExecutionID", envelope = "Envelope" }
}
