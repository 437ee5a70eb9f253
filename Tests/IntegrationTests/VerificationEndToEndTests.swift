@testable import CodTestKit
import Foundation
import Models
import Testing
import Wire

/// Verified jobs on a devstack whose last node lies about its outputs: no corrupted result is
/// ever accepted, the liar's replicas are judged invalid, and the report shows the groups.
@Suite("Verification end to end", .serialized)
struct VerificationEndToEndTests {
    /// Input folders with a line each; the `files` module writes it upper-cased to
    /// /outputs/upper.txt.
    static func inputs(_ stack: DevstackProcess, count: Int) async throws -> [(cid: String, line: String)] {
        var added: [(String, String)] = []
        for index in 0..<count {
            let folder = try Paths.temporaryDirectory("cod-verify").appendingPathComponent("in-\(index)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let line = "reading \(index) \(UUID().uuidString.lowercased())\n"
            try Data(line.utf8).write(to: folder.appendingPathComponent("data.txt"))
            let add = try await stack.cod("data", "add", "-q", folder.path)
            #expect(add.status == 0, "\(add.stderr)")
            added.append((add.stdout.trimmingCharacters(in: .whitespacesAndNewlines), line))
        }
        return added
    }

    static func waitForEnd(_ stack: DevstackProcess, _ id: String) async throws -> Job {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let job = try await stack.client.job(id).job
            if job.state.stateType.isTerminal { return job }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("job \(id) did not end:\n\(stack.logText.suffix(4000))")
    }

    /// The accepted output of a completed job, read from the orchestrator's gateway.
    static func acceptedOutput(_ stack: DevstackProcess, _ id: String) async throws -> String {
        let results = try await stack.client.results(id)
        let cid = try #require(results.first?.params["CID"]?.stringValue, "no result for \(id): \(results)")
        let bytes = try await stack.client.download("http://127.0.0.1:\(stack.port)/ipfs/\(cid)/outputs/upper.txt")
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `jobs` jobs with 2 replicas and a quorum of 2 (the bad node takes part in some), then
    /// `forced` with 5 replicas and a quorum of 3, which every node (the bad one too) runs.
    func run(mode: String, jobs: Int, forced: Int = 2, quarantineAfter: Int = 0) async throws {
        let stack = try await DevstackProcess.start(
            dataDirectory: try Paths.temporaryDirectory("cod-verify-\(mode)"), computes: 5,
            extraArguments: ["--bad-nodes", "1", "--bad-mode", mode, "--quarantine-after", String(quarantineAfter)])
        defer { stack.stop() }
        let nodes = try await stack.client.nodes()
        let bad = try #require(nodes.first { $0.info.labels["devstack-index"] == "4" }?.info.nodeID)
        let inputs = try await Self.inputs(stack, count: jobs + forced)
        var ids: [(String, String)] = []
        for (index, input) in inputs.enumerated() {
            let (replicas, quorum) = index < jobs ? ("2", "2") : ("5", "3")
            let submit = try await stack.cod(
                "wasm", "run", try Paths.fixture("files"), "-i", "ipfs://\(input.cid):/inputs", "--verify", "verified",
                "--replicas", replicas, "--quorum", quorum, "--max-replicas", "5", "--wait=false", "--id-only")
            #expect(submit.status == 0, "\(submit.stderr)")
            ids.append((jobID(submit), input.line))
        }
        var badReplicas = 0
        for (id, line) in ids {
            let job = try await Self.waitForEnd(stack, id)
            #expect(job.state.stateType == .completed, "\(id): \(job.state.message)")
            // Never the liar's answer: the accepted output is the program's.
            let output = try await Self.acceptedOutput(stack, id)
            #expect(output == line.uppercased(), "\(id) accepted \(output.debugDescription)")
            // A replica told to stop may finish first: its late result is judged just after.
            var executions = try await stack.client.executions(id)
            for _ in 0..<100 where executions.contains(where: { $0.computeState.stateType == .completed && $0.verdict == nil }) {
                try await Task.sleep(for: .milliseconds(100))
                executions = try await stack.client.executions(id)
            }
            for execution in executions where execution.nodeID == bad && execution.computeState.stateType == .completed {
                badReplicas += 1
                #expect(execution.verdict == .invalid, "\(id): the bad node's \(execution.id) is \(String(describing: execution.verdict))")
            }
            #expect(Set(executions.filter { $0.verdict == .valid }.map(\.nodeID)).count >= 2, "\(id): \(executions.map { ($0.nodeID, $0.verdict) })")
            #expect(!executions.contains { $0.nodeID == bad && $0.verdict == .valid })
            // Replicas of one partition that produced results never share a node (a node that
            // declined one for lack of room, on a loaded machine, may take a later one).
            let produced = executions.filter { $0.computeState.stateType == .completed }
            #expect(Set(produced.map(\.nodeID)).count == produced.count, "\(id): \(executions.map { ($0.nodeID, $0.computeState.stateType) })")
        }
        // The jobs with 5 replicas ran on every node, the bad one included.
        #expect(badReplicas >= forced, "the bad node ran \(badReplicas) replicas")

        // Its reputation counts exactly its invalid results, and no valid one.
        let reputation = try await stack.client.reputation(node: bad)
        #expect(reputation.count == 1 && reputation.first?.engine == "wasm", "\(reputation)")
        #expect(reputation.first?.invalid == badReplicas && reputation.first?.valid == 0 && reputation.first?.consecutiveValid == 0, "\(reputation)")
        let table = try await stack.cod("node", "reputation")
        #expect(table.status == 0 && table.stdout.contains(shortID(bad)), "\(table.stdout)\(table.stderr)")
        let honest = try await stack.client.reputation().filter { $0.nodeID != bad }
        #expect(!honest.isEmpty && honest.allSatisfy { $0.invalid == 0 && $0.valid > 0 }, "\(honest)")

        // Past the operator's limit the liar gets no new work, and `node list` says why.
        if quarantineAfter > 0, badReplicas >= quarantineAfter {
            let list = try await stack.cod("node", "list")
            #expect(list.stdout.contains("quarantined"), "\(list.stdout)")
            let after = try await stack.cod(
                "wasm", "run", try Paths.fixture("files"), "-i", "ipfs://\(inputs[0].cid):/inputs", "--verify", "verified", "--id-only")
            let executions = try await stack.client.executions(jobID(after))
            #expect(!executions.isEmpty && !executions.contains { $0.nodeID == bad }, "\(executions.map(\.nodeID))")
        }

        // The report for a job the liar took part in shows two groups and the accepted key.
        for (id, _) in ids {
            let report = try await stack.client.verification(id)
            let partition = try #require(report.partitions.first)
            #expect(partition.state == "Accepted")
            #expect(partition.acceptedKey != nil)
            if partition.groups.count > 1 {
                let describe = try await stack.cod("job", "describe", id)
                #expect(describe.stdout.contains("Verification") && describe.stdout.contains("Accepted") && describe.stdout.contains(partition.acceptedKey ?? "?"), "\(describe.stdout)")
                let table = try await stack.cod("job", "verification", id)
                #expect(table.status == 0, "\(table.stderr)")
                #expect(table.stdout.contains("accepted") && table.stdout.contains("invalid"), "\(table.stdout)")
                break
            }
        }
    }

    @Test func aNodeThatCorruptsOutputsIsCaught() async throws {
        try await run(mode: "corrupt", jobs: 12, forced: 3, quarantineAfter: 3)
    }

    @Test func aNodeThatReturnsEmptyOrRandomOutputsIsCaught() async throws {
        try await run(mode: "empty", jobs: 6)
        try await run(mode: "random", jobs: 6)
    }

    /// A program whose output differs on every run never reaches a quorum: the job fails with
    /// NoConsensus and the groups, after MaxReplicas replicas.
    @Test func nondeterministicProgramsEndInNoConsensus() async throws {
        let stack = try await DevstackProcess.start(dataDirectory: try Paths.temporaryDirectory("cod-verify-nondet"), computes: 3)
        defer { stack.stop() }
        let run = try await stack.cod(
            "exec", "--verify", "verified", "--replicas", "2", "--max-replicas", "3", "--id-only", "--",
            "sh", "-c", "cat /proc/sys/kernel/random/uuid > /outputs/id.txt")
        let id = jobID(run)
        let job = try await Self.waitForEnd(stack, id)
        #expect(job.state.stateType == .failed)
        #expect(job.state.message.contains("NoConsensus"), "\(job.state.message)")
        let executions = try await stack.client.executions(id)
        #expect(executions.count == 3, "\(executions.map(\.id))")
        let report = try await stack.client.verification(id)
        #expect(report.partitions.first?.state == "NoConsensus")
        #expect(report.partitions.first?.groups.count == 3)
    }

    /// Trusted: one execution, only on a node that carries the labels the job trusts.
    @Test func trustedJobsRunOnlyOnTrustedNodes() async throws {
        let stack = try await SharedDevstack.shared.get()
        let nodes = try await stack.client.nodes()
        let trusted = try #require(nodes.first { $0.info.labels["devstack-index"] == "1" }?.info.nodeID)
        for _ in 0..<3 {
            let run = try await stack.cod(
                "wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=0", "--verify", "trusted", "--trust", "devstack-index=1", "--id-only")
            #expect(run.status == 0, "\(run.stderr)")
            let executions = try await stack.client.executions(jobID(run))
            #expect(executions.map(\.nodeID) == [trusted])
        }
        let nobody = try await stack.cod(
            "wasm", "run", try Paths.fixture("sleepy"), "--verify", "trusted", "--trust", "operator=nobody-has-this")
        #expect(nobody.status != 0)
        #expect(nobody.stderr.contains("not trusted by the job: it lacks label operator=nobody-has-this"), "\(nobody.stderr)")
        let none = try await stack.cod("wasm", "run", try Paths.fixture("sleepy"), "--verify", "trusted")
        #expect(none.status != 0 && none.stderr.contains("Verification.TrustLabels"), "\(none.stderr)")
    }

    /// Hostile settings are refused at submission with the field.
    @Test func badVerificationSettingsAreRefused() async throws {
        let stack = try await SharedDevstack.shared.get()
        let fixture = try Paths.fixture("files")
        for (flags, field) in [
            (["--replicas", "0"], "Verification.Replicas"), (["--replicas", "2", "--quorum", "3"], "Verification.Quorum"),
            (["--replicas", "99999999999"], "Verification.Replicas"), (["--replicas", "3", "--max-replicas", "2"], "Verification.MaxReplicas"),
        ] {
            let run = try await stack.cod(["wasm", "run", fixture, "--verify", "verified"] + flags)
            #expect(run.status != 0)
            #expect(run.stderr.contains(field), "\(flags): \(run.stderr)")
        }
        let mode = try await stack.cod("wasm", "run", fixture, "--verify", "trusting")
        #expect(mode.status != 0 && mode.stderr.contains("--verify must be fast, verified or trusted"), "\(mode.stderr)")
        #expect(await isServing(stack))
    }
}

/// A replica's node is killed: its replica times out with the node, another is added on a
/// node that ran none, the partition completes, and the reputation records the timeout.
@Suite("Verification with a node killed", .serialized)
struct VerificationKillTests {
    @Test func aKilledReplicasNodeTimesOutAndAnotherReplicaCompletesThePartition() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator(["--node-timeout", "4", "--heartbeat-interval", "0.5"])
        let computes = try (0..<3).map { try cluster.compute($0) }
        defer { for process in [orchestrator] + computes where process.isRunning { process.interrupt() } }
        try await cluster.waitForNodes(3)
        let submit = try await cluster.cli(
            "wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=15", "--verify", "verified", "--replicas", "2", "--wait=false", "--id-only")
        let id = jobID(submit)
        #expect(submit.status == 0, "\(submit.stderr)")
        // Both replicas running, then one's node dies.
        var running: [Execution] = []
        for _ in 0..<300 where running.count < 2 {
            running = (try await cluster.state(id)?.executions?.items ?? []).filter { $0.computeState.stateType == .running }
            if running.count < 2 { try await Task.sleep(for: .milliseconds(100)) }
        }
        try #require(running.count == 2, "both replicas should run")
        let victim = try #require(running.first?.nodeID)
        let nodes = try await cluster.nodes()
        let index = try #require(nodes.firstIndex { $0.info.nodeID == victim }.map { _ in
            // The compute's folder holds its node-id: find which process it is.
            (0..<3).first { (try? String(contentsOf: cluster.base.appendingPathComponent("c\($0)/compute/node-id"), encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) == victim }
        } ?? nil)
        cluster.kill9(computes[index])

        let job = try await cluster.waitForEnd(id, seconds: 150)
        #expect(job.job.state.stateType == .completed, "\(job.job.state.message)")
        let executions = job.executions?.items ?? []
        #expect(executions.count == 3, "\(executions.map { ($0.nodeID, $0.computeState.stateType) })")
        #expect(executions.filter { $0.verdict == .valid }.count == 2)
        #expect(Set(executions.map(\.nodeID)).count == 3, "the added replica went to the node that ran none")
        let lost = executions.first { $0.nodeID == victim }
        #expect(lost?.computeState.stateType == .failed && lost?.verdict == nil)
        let reputation = try await cluster.cli("node", "reputation", victim, "--output", "json")
        let items = try JSONDecoder().decode(ListResponse<NodeReputation>.self, from: Data(reputation.stdout.utf8)).items
        #expect(items.first?.timeouts == 1 && items.first?.valid == 0, "\(reputation.stdout)")
    }
}

/// The verification bench runs end to end on a small dataset (it measures nothing here: the
/// figures are in docs/BENCHMARKS.md); every mode gives the floor's answer.
@Suite("Verification bench", .serialized)
struct VerificationBenchTests {
    @Test func fastVerifiedAndAdaptiveGiveTheSameAnswer() async throws {
        let run = try await Run.async([
            try Paths.cod.path, "bench", "dataset", "--size", "3000000", "--shards", "4", "--computes", "2", "--compare-verification",
        ])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        for mode in ["Fast", "Verified", "Adaptive"] {
            let row = run.stdout.split(separator: "\n").first { $0.hasPrefix(mode + " ") }
            #expect(row?.hasSuffix("same") == true, "\(mode): \(run.stdout)")
        }
    }
}
