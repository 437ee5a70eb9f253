public import Foundation
public import Models

/// The newest version of the node protocol spoken over the compute node's WebSocket.
/// Version 2 added live log chunks.
public let nodeProtocolVersion = 2

/// The protocol versions this build can speak; the handshake settles on the highest one both
/// sides know.
public let supportedNodeProtocolVersions: ClosedRange<Int> = 1...nodeProtocolVersion

/// How much of each output stream of a running execution is streamed live (per stream); the
/// rest of a longer log reaches followers from the stored result when the execution ends.
public let liveLogLimit = 16 << 20

/// One message on a compute node's connection, in either direction.
///
/// Each side numbers what it sends (`seq`) and acknowledges what it has durably handled
/// (`ack`), so a reconnecting peer can ask for a replay from the last acknowledged number.
/// Handlers are idempotent: a replayed message changes nothing.
public struct Envelope: Codable, Sendable {
    public var version: Int
    /// Sender's sequence number; 0 for messages that need no delivery guarantee (heartbeats).
    public var seq: UInt64
    /// The highest sequence number of the peer's messages this sender has handled.
    public var ack: UInt64
    public var message: NodeMessage

    public init(seq: UInt64 = 0, ack: UInt64 = 0, message: NodeMessage) {
        self.version = nodeProtocolVersion
        self.seq = seq
        self.ack = ack
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case version = "v", seq, ack, message
    }
}

/// The messages of the node protocol.
public enum NodeMessage: Codable, Sendable {
    // Compute -> orchestrator.
    case hello(Hello)
    case heartbeat(Heartbeat)
    case bidResult(BidResult)
    case executionProgress(ExecutionProgress)
    case runResult(RunResult)
    case computeError(ComputeError)
    case logChunk(LogChunk)
    // Orchestrator -> compute.
    case welcome(Welcome)
    case runExecution(RunExecution)
    case cancelExecution(CancelExecution)
    case reject(Reject)
    // Either way.
    case ack

    public struct Hello: Codable, Sendable {
        public var info: NodeInfo
        public var token: String
        /// The last orchestrator message this node handled, for replay.
        public var lastOrchestratorSeq: UInt64
        /// Executions the node is still running (after a reconnect).
        public var activeExecutions: [String]
        /// The protocol versions the node speaks, lowest and highest; absent means version 1.
        public var protocolVersions: [Int]?
        /// True when a new node process resumes the session of one that stopped: the executions
        /// that process ran are gone, except those `reportedExecutions` (reports it kept on disk
        /// and replays) account for.
        public var resumed: Bool?
        public var reportedExecutions: [String]?
        /// The node's Ed25519 public key (base64), the challenge it got from
        /// `GET /api/v1/compute/challenge`, and its signature of
        /// ``NodeIdentity/helloPayload(challenge:nodeID:session:)`` (base64).
        public var publicKey: String?
        public var challenge: String?
        public var signature: String?
        /// A random value of the node's that the welcome signs, so the node knows which
        /// orchestrator answered this very hello.
        public var welcomeNonce: String?

        public init(
            info: NodeInfo, token: String, lastOrchestratorSeq: UInt64, activeExecutions: [String],
            protocolVersions: [Int]? = [supportedNodeProtocolVersions.lowerBound, supportedNodeProtocolVersions.upperBound]
        ) {
            self.info = info
            self.token = token
            self.lastOrchestratorSeq = lastOrchestratorSeq
            self.activeExecutions = activeExecutions
            self.protocolVersions = protocolVersions
        }

        /// The versions the node speaks, or nil when what it sent is not a range.
        public var versionRange: ClosedRange<Int>? {
            guard let versions = protocolVersions else { return 1...1 }
            guard versions.count == 2, versions[0] >= 1, versions[0] <= versions[1] else { return nil }
            return versions[0]...versions[1]
        }
    }

    /// The highest protocol version both sides speak, or nil when they share none.
    public static func negotiate(_ node: ClosedRange<Int>, _ orchestrator: ClosedRange<Int> = supportedNodeProtocolVersions) -> Int? {
        let low = max(node.lowerBound, orchestrator.lowerBound)
        let high = min(node.upperBound, orchestrator.upperBound)
        return low <= high ? high : nil
    }

    public struct Welcome: Codable, Sendable {
        public var nodeID: String
        /// The last compute message the orchestrator handled, so the node replays the rest.
        public var lastComputeSeq: UInt64
        public var heartbeatIntervalMillis: Int
        /// The protocol version settled on; absent from orchestrators that speak only version 1.
        public var protocolVersion: Int?
        /// The orchestrator's Ed25519 public key (base64) and its signature of
        /// ``NodeIdentity/welcomePayload(nonce:nodeID:session:)`` (base64).
        public var orchestratorKey: String?
        public var signature: String?

        public init(nodeID: String, lastComputeSeq: UInt64, heartbeatIntervalMillis: Int, protocolVersion: Int? = nil) {
            self.nodeID = nodeID
            self.lastComputeSeq = lastComputeSeq
            self.heartbeatIntervalMillis = heartbeatIntervalMillis
            self.protocolVersion = protocolVersion
        }
    }

    public struct Reject: Codable, Sendable {
        public var reason: String
        public init(reason: String) { self.reason = reason }
    }

    public struct Heartbeat: Codable, Sendable {
        public var availableCapacity: Resources
        public var runningExecutions: Int
        /// The roots the node holds whole, as CIDv1 strings.
        public var heldRoots: [String]?
        public init(availableCapacity: Resources, runningExecutions: Int, heldRoots: [String]? = nil) {
            self.availableCapacity = availableCapacity
            self.runningExecutions = runningExecutions
            self.heldRoots = heldRoots
        }
    }

    public struct RunExecution: Codable, Sendable {
        public var execution: Execution
        public var job: Job
        /// For each `ipfs` input CID, the API addresses of nodes that hold it.
        public var contentSources: [String: [String]]?
        /// For a job that may start children: the API key scoped to this execution, which its
        /// node uses for the spawn folder and hands the job as `COD_API_KEY`. It stops working
        /// when the execution ends.
        public var apiKey: String?
        public init(execution: Execution, job: Job, contentSources: [String: [String]]? = nil, apiKey: String? = nil) {
            self.execution = execution
            self.job = job
            self.contentSources = contentSources
            self.apiKey = apiKey
        }
    }

    public struct CancelExecution: Codable, Sendable {
        public var executionID: String
        public var reason: String
        public init(executionID: String, reason: String) {
            self.executionID = executionID
            self.reason = reason
        }
    }

    public struct BidResult: Codable, Sendable {
        public var executionID: String
        public var accepted: Bool
        public var reason: String
        public init(executionID: String, accepted: Bool, reason: String) {
            self.executionID = executionID
            self.accepted = accepted
            self.reason = reason
        }
    }

    public struct ExecutionProgress: Codable, Sendable {
        public var executionID: String
        public var state: ExecutionStateType
        public init(executionID: String, state: ExecutionStateType) {
            self.executionID = executionID
            self.state = state
        }
    }

    public struct RunResult: Codable, Sendable {
        public var executionID: String
        public var output: RunCommandResult
        /// Where the orchestrator stored the uploaded result bundle; empty with the noop publisher.
        public var resultBundleSize: Int64
        public var resultBundleSHA256: String
        /// The results directory's CID, with the `ipfs` publisher.
        public var resultCID: String?
        /// What the execution read of its `ipfs` inputs, locally and over the network.
        public var inputStats: InputStats?
        /// The node's signed receipt: a DSSE envelope's exact bytes, base64.
        public var receipt: String?
        /// What the execution used, as the node measured it.
        public var usage: Usage?
        /// The node's price script's quote for it, if the node has a script.
        public var quote: PriceList?
        public init(
            executionID: String, output: RunCommandResult, resultBundleSize: Int64, resultBundleSHA256: String,
            resultCID: String? = nil, inputStats: InputStats? = nil
        ) {
            self.executionID = executionID
            self.output = output
            self.resultBundleSize = resultBundleSize
            self.resultBundleSHA256 = resultBundleSHA256
            self.resultCID = resultCID
            self.inputStats = inputStats
        }
    }

    public struct ComputeError: Codable, Sendable {
        public var executionID: String
        public var message: String
        /// True when running it elsewhere could succeed (a node problem, not a job problem).
        public var retryable: Bool
        public var output: RunCommandResult?
        public var inputStats: InputStats?
        /// Why it failed; nodes before typed failures send only `retryable`.
        public var failure: ExecutionFailure?
        /// The node's signed receipt: a DSSE envelope's exact bytes, base64.
        public var receipt: String?
        /// What the execution used before it failed, as the node measured it.
        public var usage: Usage?
        /// The node's price script's quote for it, if the node has a script.
        public var quote: PriceList?
        public init(executionID: String, failure: ExecutionFailure, message: String, output: RunCommandResult?, inputStats: InputStats? = nil) {
            self.executionID = executionID
            self.message = message
            self.retryable = failure.retryable
            self.output = output
            self.inputStats = inputStats
            self.failure = failure
        }

        /// The failure as the orchestrator records it.
        public var typedFailure: ExecutionFailure {
            failure ?? ExecutionFailure(.engineError, retryable: retryable)
        }
    }

    /// New output of a running execution (protocol version 2). Live chunks are best effort:
    /// a lost one leaves a gap the orchestrator skips, and the stored result has everything.
    public struct LogChunk: Codable, Sendable {
        public var executionID: String
        public var jobID: String
        /// 1 for stdout, 2 for stderr.
        public var stream: Int
        /// Where `data` starts in the stream.
        public var offset: Int
        public var data: Data
        public init(executionID: String, jobID: String, stream: Int, offset: Int, data: Data) {
            self.executionID = executionID
            self.jobID = jobID
            self.stream = stream
            self.offset = offset
            self.data = data
        }
    }

    /// The largest WebSocket frame either side accepts once a node is admitted. The
    /// orchestrator never queues a message that would not fit (the execution fails instead),
    /// so nothing waits in an outbox forever.
    public static let maxFrameBytes = 16 << 20
    /// The largest first message (the hello) accepted before the join token is checked.
    public static let maxHelloBytes = 1 << 20

    /// Whether the message needs acknowledged, replayable delivery.
    public var isReliable: Bool {
        switch self {
        case .bidResult, .executionProgress, .runResult, .computeError, .runExecution, .cancelExecution: return true
        case .hello, .heartbeat, .welcome, .reject, .ack, .logChunk: return false
        }
    }
}
