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

    /// Hellos that do not prove their key are refused through the real WebSocket, and none of
    /// them leaves a node behind: a replayed hello, a garbage key, a garbage signature, a
    /// signature by another key, a hello with no key, and a garbage token.
    @Test func helloesThatDoNotProveTheirKeyAreRefused() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator()
        defer { if orchestrator.isRunning { orchestrator.interrupt() } }
        for _ in 0..<100 where (try? await cluster.cli("agent", "alive"))?.status != 0 { try await Task.sleep(for: .milliseconds(100)) }

        let honest = RogueNode(port: cluster.port, token: "t0ken")
        let recorded = try await honest.helloText()
        #expect(try await honest.connect(helloText: recorded), "an honest hello was refused")
        #expect(try await !honest.connect(helloText: recorded), "a replayed hello was welcomed")

        let other = Curve25519.Signing.PrivateKey()
        let forgeries: [(String, (inout NodeMessage.Hello) -> Void)] = [
            ("garbage key", { $0.publicKey = "not-a-key" }),
            ("garbage signature", { $0.signature = Data(repeating: 7, count: 64).base64EncodedString() }),
            ("undecodable signature", { $0.signature = "%%%" }),
            ("another key's signature", { hello in
                hello.signature = try? other.signature(for: Data("something else".utf8)).base64EncodedString()
            }),
            ("no key", { $0.publicKey = nil; $0.signature = nil }),
            ("another key claiming the ID", { $0.publicKey = NodeIdentity.encode(other.publicKey) }),
        ]
        var strangers: [String] = []
        for (what, forge) in forgeries {
            let stranger = RogueNode(port: cluster.port, token: "t0ken")
            strangers.append(stranger.nodeID)
            #expect(try await !stranger.connect(helloText: try await stranger.helloText(forge: forge)), "\(what) was welcomed")
        }
        for token in ["not the token", "", String(repeating: "t0ken", count: 100_000)] {
            let wrongToken = RogueNode(port: cluster.port, token: token)
            strangers.append(wrongToken.nodeID)
            #expect(try await !wrongToken.connect(helloText: try await wrongToken.helloText()), "a token of \(token.utf8.count) bytes was welcomed")
        }

        let known = Set(try await cluster.nodes().map(\.info.nodeID))
        #expect(known == [honest.nodeID], "\(known)")
        #expect(strangers.allSatisfy { !known.contains($0) })
    }

    /// Join tokens made with `cod node token`: one enrolls a node; revoked, it enrolls no
    /// other, while the node it enrolled stays and reconnects after a restart; an expired one
    /// and a revoked startup token enroll nobody; the secrets never reach the log.
    @Test func joinTokensEnrollUntilRevokedOrExpiredAndEnrolledNodesStay() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator()
        var processes = [orchestrator]
        defer { for process in processes where process.isRunning { process.interrupt() } }
        for _ in 0..<100 where (try? await cluster.cli("agent", "alive"))?.status != 0 { try await Task.sleep(for: .milliseconds(100)) }

        func create(_ name: String, expires: String? = nil) async throws -> (id: String, file: String, secret: String) {
            let result = try await cluster.cli(["node", "token", "create", "--name", name, "--output", "json"] + (expires.map { ["--expires", $0] } ?? []))
            #expect(result.status == 0, "\(result.stderr)")
            let response = try JSONDecoder().decode(CreateJoinTokenResponse.self, from: Data(result.stdout.utf8))
            let file = cluster.base.appendingPathComponent("\(name).token")
            try Data(response.secret.utf8).write(to: file)
            return (response.token.id, file.path, response.secret)
        }
        func tokens() async throws -> [JoinTokenInfo] {
            let result = try await cluster.cli("node", "token", "list", "--output", "json")
            return try JSONDecoder().decode(ListResponse<JoinTokenInfo>.self, from: Data(result.stdout.utf8)).items
        }
        func joinsNot(_ index: Int, tokenFile: String, because reason: String) async throws {
            let process = try cluster.start(
                ["serve", "--compute", "--compute-port", "0", "--orchestrators", "http://127.0.0.1:\(cluster.port)", "--token-file", tokenFile,
                 "--data-dir", cluster.base.appendingPathComponent("c\(index)").path], log: "compute\(index).log")
            processes.append(process)
            let log = cluster.base.appendingPathComponent("compute\(index).log")
            var said = false
            for _ in 0..<100 where !said {
                try await Task.sleep(for: .milliseconds(100))
                said = ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains(reason)
            }
            #expect(said, "node \(index) did not say \(reason):\n\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
            process.interrupt()
        }

        let rack = try await create("rack-3", expires: "1h")
        var first = try cluster.start(
            ["serve", "--compute", "--compute-port", "0", "--orchestrators", "http://127.0.0.1:\(cluster.port)", "--token-file", rack.file,
             "--data-dir", cluster.base.appendingPathComponent("c0").path], log: "compute0.log")
        processes.append(first)
        try await cluster.waitForNodes(1)
        #expect(try await tokens().first { $0.id == rack.id }?.enrollments == 1)

        let revoked = try await cluster.cli("node", "token", "revoke", rack.id)
        #expect(revoked.status == 0, "\(revoked.stderr)")
        #expect(try await tokens().first { $0.id == rack.id }?.state(now: 0) == .revoked)
        // The node it enrolled stays connected, and comes back after a restart with its key.
        #expect(try await cluster.nodes().filter { $0.connection == .connected }.count == 1)
        first.interrupt()
        first.waitUntilExit()
        first = try cluster.start(
            ["serve", "--compute", "--compute-port", "0", "--orchestrators", "http://127.0.0.1:\(cluster.port)", "--token-file", rack.file,
             "--data-dir", cluster.base.appendingPathComponent("c0").path], log: "compute0.log")
        processes.append(first)
        try await cluster.waitForNodes(1)
        try await joinsNot(1, tokenFile: rack.file, because: "join token \(rack.id) (rack-3) was revoked")

        let brief = try await create("brief", expires: "1s")
        try await Task.sleep(for: .seconds(1.2))
        try await joinsNot(2, tokenFile: brief.file, because: "join token \(brief.id) (brief) expired")

        // The startup token is listed and can be revoked like any other.
        let startup = try #require(try await tokens().first { $0.isStartupToken })
        #expect(try await cluster.cli("node", "token", "revoke", startup.id).status == 0)
        let startupFile = cluster.base.appendingPathComponent("startup.token")
        try Data("t0ken".utf8).write(to: startupFile)
        try await joinsNot(3, tokenFile: startupFile.path, because: "was revoked")

        // Hostile requests make no token: names that are paths, empty or huge, and lifetimes
        // that are negative or would overflow.
        let before = try await tokens().count
        let admin = CodClient(baseURL: "127.0.0.1:\(cluster.port)", token: try #require(cluster.adminKey))
        for (name, lifetime) in [("../../etc", Int64(60)), ("", 60), (String(repeating: "n", count: 10_000), 60), ("ok", -5), ("ok", .max)] {
            await #expect(throws: CodError.self, "name of \(name.count) characters, lifetime \(lifetime)") {
                _ = try await admin.createJoinToken(name: name, expiresInSeconds: lifetime)
            }
        }
        let negative = try await cluster.cli("node", "token", "create", "--name", "ok", "--expires", "-5m")
        #expect(negative.status != 0)
        #expect(try await tokens().count == before)

        // Only an admin manages tokens.
        let reader = try await cluster.cli("auth", "user", "add", "reader", "--capability", "read:node", "--output", "json")
        let readerKey = try #require(try JSONDecoder().decode(CreateUserResponse.self, from: Data(reader.stdout.utf8)).apiKey)
        let denied = try await Run.async(
            [cluster.cod.path, "node", "token", "create", "--name", "mine"], environment: cluster.environment.merging(["COD_API_KEY": readerKey]) { $1 })
        #expect(denied.status != 0 && denied.stderr.contains("admin"), "\(denied.stderr)")

        let orchestratorLog = try String(contentsOf: cluster.base.appendingPathComponent("orchestrator.log"), encoding: .utf8)
        for secret in [rack.secret, brief.secret] { #expect(!orchestratorLog.contains(secret)) }
        #expect(orchestratorLog.contains("enrolled with join token \(rack.id)"))
    }
}

/// A node with its own key and the join token, speaking the node protocol by hand.
struct RogueNode {
    let port: Int
    let token: String
    var key = Curve25519.Signing.PrivateKey()
    var nodeID: String { NodeIdentity.nodeID(publicKey: key.publicKey) }

    init(port: Int, token: String) {
        self.port = port
        self.token = token
    }

    /// A signed hello over a fresh challenge, changed by `forge` after signing, with its session.
    func helloText(forge: (inout NodeMessage.Hello) -> Void = { _ in }) async throws -> String {
        let session = UUID().uuidString
        let challenge = try await CodClient(baseURL: "127.0.0.1:\(port)").nodeChallenge()
        var hello = NodeMessage.Hello(info: NodeInfo(nodeID: nodeID), token: token, lastOrchestratorSeq: 0, activeExecutions: [])
        hello.publicKey = NodeIdentity.encode(key.publicKey)
        hello.challenge = challenge
        hello.signature = try key.signature(for: NodeIdentity.helloPayload(challenge: challenge, nodeID: nodeID, session: session)).base64EncodedString()
        forge(&hello)
        return try Self.encode(Envelope(message: .hello(hello))) + "\u{0}" + session
    }

    static func encode(_ envelope: Envelope) throws -> String { String(decoding: try JSONEncoder().encode(envelope), as: UTF8.self) }

    /// Says `helloText`; once welcomed, sends `messages` as sequenced reports and stays a
    /// moment. Returns whether the orchestrator welcomed it.
    @discardableResult
    func connect(helloText: String, messages: [NodeMessage] = []) async throws -> Bool {
        let frames = try messages.enumerated().map { try Self.encode(Envelope(seq: UInt64($0.offset + 1), message: $0.element)) }
        let welcomed = WelcomeFlag()
        _ = try? await WebSocketClient.connect(
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
        return welcomed.value
    }

    /// Enrolls, waits for the welcome, sends `messages` as sequenced reports, and stays a moment.
    func send(_ messages: [NodeMessage]) async throws {
        #expect(try await connect(helloText: try await helloText(), messages: messages), "the rogue node was not welcomed")
    }
}

/// Whether the welcome arrived, set from the connection's handler.
final class WelcomeFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var welcomed = false
    func set() { lock.withLock { welcomed = true } }
    var value: Bool { lock.withLock { welcomed } }
}
