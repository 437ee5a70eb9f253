import APIClient
@testable import CodTestKit
import Crypto
import Foundation
import HummingbirdWSClient
import Logging
import Models
import Testing
import Wire

/// Nodes are their keys: separate `cod serve` processes, an impostor with the join token, and
/// a node that reports for work that is not its own.
@Suite("Node identity", .serialized)
struct NodeIdentityTests {
    /// A process holding the join token says hello with an enrolled node's ID and a key of its
    /// own: it is refused, the refusal shows in `cod node list`, and the real node keeps its
    /// work and its result.
    @Test func anImpostorWithTheJoinTokenIsRefused() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator()
        let victim = try cluster.compute(0)
        var impostor: Process?
        defer {
            for process in [orchestrator, victim] + (impostor.map { [$0] } ?? []) where process.isRunning { process.interrupt() }
        }
        try await cluster.waitForNodes(1)
        let nodeID = try #require(try await cluster.nodes().first?.info.nodeID)
        // The victim's node key is its own file, 0600, and its ID is derived from it.
        let keyFile = cluster.base.appendingPathComponent("c0/compute/node.key")
        #expect(try FileManager.default.attributesOfItem(atPath: keyFile.path)[.posixPermissions] as? Int == 0o600)

        let submitted = try await cluster.cli("wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=4", "--wait=false", "--id-only")
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await cluster.waitForRunning(id)

        // The impostor: the join token, the victim's ID (written where a node keeps an ID it
        // made itself), and a key of its own.
        let impostorData = cluster.base.appendingPathComponent("c1/compute")
        try FileManager.default.createDirectory(at: impostorData, withIntermediateDirectories: true)
        try Data(nodeID.utf8).write(to: impostorData.appendingPathComponent("node-id"))
        impostor = try cluster.compute(1)
        let log = cluster.base.appendingPathComponent("compute1.log")
        var refused = false
        for _ in 0..<100 where !refused {
            try await Task.sleep(for: .milliseconds(100))
            refused = ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("signed by another key")
        }
        #expect(refused, "the impostor was not refused:\n\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")

        let job = try await cluster.waitForEnd(id)
        #expect(job.job.state.stateType == .completed, "\(job.job.state)")
        let executions = job.executions?.items ?? []
        #expect(executions.count == 1 && executions.allSatisfy { $0.nodeID == nodeID }, "\(executions.map(\.nodeID))")
        let output = try Paths.temporaryDirectory("cod-identity")
        #expect(try await cluster.cli("job", "get", id, "--output-dir", output.path).status == 0)
        #expect(try String(contentsOf: output.appendingPathComponent("outputs/done.txt"), encoding: .utf8) == "done\n")
        let node = try #require(try await cluster.nodes().first { $0.info.nodeID == nodeID })
        #expect(node.connection == .connected)
        #expect(node.lastRefusal?.contains("another key") == true, "\(node.lastRefusal ?? "no refusal recorded")")
        let table = try await cluster.cli("node", "list")
        #expect(table.stdout.contains("another key"), "\(table.stdout)")
    }

    /// The orchestrator signs its welcome: a node that enrolled with one orchestrator refuses
    /// another that took its address (with the same join token), and takes no work from it.
    @Test func aNodeRefusesAnotherOrchestratorAtTheSameAddress() async throws {
        let cluster = try ServeCluster()
        let first = try cluster.orchestrator()
        let node = try cluster.compute(0)
        defer { for process in [first, node] where process.isRunning { process.interrupt() } }
        try await cluster.waitForNodes(1)
        let pinned = cluster.base.appendingPathComponent("c0/compute/orchestrator.pub")
        #expect(FileManager.default.fileExists(atPath: pinned.path), "the node keeps the key it enrolled with")
        first.interrupt()
        first.waitUntilExit()
        let other = try cluster.start(
            ["serve", "--orchestrator", "--port", String(cluster.port), "--data-dir", cluster.base.appendingPathComponent("other").path,
             "--token", "t0ken"], log: "other.log")
        defer { if other.isRunning { other.interrupt() } }
        let log = cluster.base.appendingPathComponent("compute0.log")
        var refused = false
        for _ in 0..<150 where !refused {
            try await Task.sleep(for: .milliseconds(100))
            refused = ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("signed by another orchestrator key")
        }
        #expect(refused, "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        // A job sent to the other orchestrator does not run on the node.
        let key = try await ChildProcesses(executable: cluster.cod, logs: cluster.base).adminKey(data: cluster.base.appendingPathComponent("other"))
        let environment = ["COD_API_PORT": String(cluster.port), "COD_API_HOST": "127.0.0.1", "COD_API_KEY": key]
        let submitted = try await Run.async(
            [cluster.cod.path, "wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=0", "--wait=false", "--id-only"], environment: environment)
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(id.hasPrefix("j-"), "\(submitted.stderr)")
        try await Task.sleep(for: .seconds(4))
        let described = try await Run.async([cluster.cod.path, "job", "describe", id, "--output", "json"], environment: environment)
        let job = try JSONDecoder().decode(GetJobResponse.self, from: Data(described.stdout.utf8))
        #expect(job.job.state.stateType != .completed, "the node worked for an orchestrator it did not enroll with")
        #expect(!(job.executions?.items ?? []).contains { $0.computeState.stateType == .completed || $0.computeState.stateType == .running })
    }

    /// An enrolled node that reports on another node's execution (its end, its log lines)
    /// changes nothing: the execution's own node finishes it, and the log has only its lines.
    @Test func aReportOnAnotherNodesConnectionChangesNothing() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator()
        let victim = try cluster.compute(0)
        defer {
            for process in [orchestrator, victim] where process.isRunning { process.interrupt() }
        }
        try await cluster.waitForNodes(1)
        let submitted = try await cluster.cli("wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=4", "--wait=false", "--id-only")
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await cluster.waitForRunning(id)
        let execution = try #require(try await cluster.state(id)?.executions?.items.first)

        let forged = "FORGED-\(UUID().uuidString)"
        let liar = RogueNode(port: cluster.port, token: "t0ken")
        try await liar.send([
            .logChunk(.init(executionID: execution.id, jobID: id, stream: 1, offset: 0, data: Data("\(forged)\n".utf8))),
            .runResult(.init(
                executionID: execution.id, output: RunCommandResult(stdout: forged, exitCode: 0), resultBundleSize: 0, resultBundleSHA256: "")),
        ])
        // The live view, while the execution still runs, has none of the forged lines.
        let live = try await cluster.cli("job", "logs", id)
        #expect(live.status == 0 && !live.stdout.contains(forged), "\(live.stdout)")
        let job = try await cluster.waitForEnd(id)
        #expect(job.job.state.stateType == .completed)
        let ended = try #require(job.executions?.items.first { $0.id == execution.id })
        #expect(ended.nodeID == execution.nodeID)
        let stdout = ended.runOutput?.stdout ?? ""
        #expect(stdout.contains("slept 4") && !stdout.contains(forged), "the forged result was accepted: \(stdout)")
        let logs = try await cluster.cli("job", "logs", id)
        #expect(logs.stdout.contains("slept 4") && !logs.stdout.contains(forged), "\(logs.stdout)")
        let orchestratorLog = try String(contentsOf: cluster.base.appendingPathComponent("orchestrator.log"), encoding: .utf8)
        #expect(!orchestratorLog.contains(forged))
    }
}

/// A node with its own key and the join token, speaking the node protocol by hand.
struct RogueNode {
    let port: Int
    let token: String

    /// Enrolls, waits for the welcome, sends `messages` as sequenced reports, and stays a moment.
    func send(_ messages: [NodeMessage]) async throws {
        let key = Curve25519.Signing.PrivateKey()
        let nodeID = NodeIdentity.nodeID(publicKey: key.publicKey)
        let session = UUID().uuidString
        let challenge = try await CodClient(baseURL: "127.0.0.1:\(port)").nodeChallenge()
        var hello = NodeMessage.Hello(info: NodeInfo(nodeID: nodeID), token: token, lastOrchestratorSeq: 0, activeExecutions: [])
        hello.publicKey = NodeIdentity.encode(key.publicKey)
        hello.challenge = challenge
        hello.signature = try key.signature(for: NodeIdentity.helloPayload(challenge: challenge, nodeID: nodeID, session: session)).base64EncodedString()
        let encode: (Envelope) throws -> String = { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        let helloText = try encode(Envelope(message: .hello(hello))) + "\u{0}" + session
        let frames = try messages.enumerated().map { try encode(Envelope(seq: UInt64($0.offset + 1), message: $0.element)) }
        let welcomed = WelcomeFlag()
        _ = try await WebSocketClient.connect(
            url: "ws://127.0.0.1:\(port)/api/v1/compute/connect", configuration: .init(maxFrameSize: 1 << 24), logger: Logger(label: "rogue")
        ) { inbound, writer, _ in
            try await writer.write(.text(helloText))
            for try await message in inbound.messages(maxSize: 1 << 24) {
                guard case .text(let text) = message, text.contains("welcome") else { continue }
                welcomed.set()
                for frame in frames { try await writer.write(.text(frame)) }
                try await Task.sleep(for: .milliseconds(500))
                try await writer.close(.normalClosure, reason: nil)
                break
            }
        }
        #expect(welcomed.value, "the rogue node was not welcomed")
    }
}

/// Whether the welcome arrived, set from the connection's handler.
final class WelcomeFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var welcomed = false
    func set() { lock.withLock { welcomed = true } }
    var value: Bool { lock.withLock { welcomed } }
}
