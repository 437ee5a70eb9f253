@testable import CodTestKit
import APIClient
import Foundation
import Models
import Testing
import Wire

/// Signed receipts through separate `cod serve` processes: each execution's receipt verifies
/// offline with the key from `node list`, the job's with the orchestrator's; a node killed and
/// restarted mid-run leaves one chain with no gap; a receipt whose acknowledgement was lost
/// arrives once, with the same CID.
@Suite("Receipts end to end", .serialized)
struct ReceiptEndToEndTests {
    @Test func receiptsVerifyOfflineAndTamperingIsCaught() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator()
        let compute = try cluster.compute(0)
        defer { for process in [orchestrator, compute] where process.isRunning { process.interrupt() } }
        try await cluster.waitForNodes(1)
        let run = try await cluster.cli("wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=0", "--id-only")
        #expect(run.status == 0, "\(run.stderr)")
        let id = jobID(run)
        let output = try Paths.temporaryDirectory("cod-receipts")
        let get = try await cluster.cli("job", "get", id, "--receipts", "--output-dir", output.path)
        #expect(get.status == 0, "\(get.stderr)")
        let folder = output.appendingPathComponent("receipts")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".dsse.json") }.sorted()
        #expect(files.count == 2, "the job's and its execution's: \(files)")

        // Offline, with the keys cod node list shows (the orchestrator's from keys.json).
        let nodes = try await cluster.cli("node", "list", "--output", "json")
        let nodesFile = output.appendingPathComponent("nodes.json")
        try Data(nodes.stdout.utf8).write(to: nodesFile)
        let receiptFiles = files.map { folder.appendingPathComponent($0).path }
        let verify = try await cluster.cli(["receipt", "verify", "--keys", folder.appendingPathComponent("keys.json").path] + receiptFiles)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("All 2 receipts verify"), "\(verify.stdout)")
        let byNodeKeys = try await cluster.cli(["receipt", "verify", "--keys", nodesFile.path] + receiptFiles)
        #expect(byNodeKeys.stdout.contains("execution ") && byNodeKeys.stderr.contains("no key for signer orchestrator"), "\(byNodeKeys.stdout)\(byNodeKeys.stderr)")

        // The execution receipt says what ran and what came out.
        let executions = try await cluster.state(id)?.executions?.items ?? []
        let execution = try #require(executions.first)
        let receiptCID = try #require(execution.receipt)
        let bytes = try Data(contentsOf: folder.appendingPathComponent("\(receiptCID).dsse.json"))
        let keys = try JSONDecoder().decode([String: String].self, from: try Data(contentsOf: folder.appendingPathComponent("keys.json")))
        let envelope = try DSSEEnvelope.decode(bytes)
        let receipt = try JSONDecoder().decode(ExecutionReceipt.self, from: try envelope.verifiedPayload(key: try #require(keys[execution.nodeID])))
        #expect(receipt.executionID == execution.id && receipt.nodeID == execution.nodeID && receipt.jobID == id)
        #expect(receipt.out.resultCID == execution.publishedResult.params["CID"]?.stringValue && receipt.out.exitCode == 0)
        #expect(receipt.engine.type == "wasm" && !receipt.engine.artifact.isEmpty)
        #expect(receipt.usage.wallSeconds >= 0)

        // A file with one byte changed no longer verifies.
        var changed = bytes
        let at = try #require(changed.firstRange(of: Data("payload".utf8))).upperBound + 5
        changed[at] = changed[at] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let tamperedFile = output.appendingPathComponent("tampered.dsse.json")
        try changed.write(to: tamperedFile)
        let tampered = try await cluster.cli("receipt", "verify", "--keys", folder.appendingPathComponent("keys.json").path, tamperedFile.path)
        #expect(tampered.status != 0, "\(tampered.stdout)")

        // job receipts --verify and --intoto.
        let checked = try await cluster.cli("job", "receipts", id, "--verify")
        #expect(checked.status == 0 && checked.stdout.contains("All 2 receipts verify"), "\(checked.stdout)\(checked.stderr)")
        let intoto = try await cluster.cli("job", "receipts", id, "--intoto")
        let statement = try #require(try JSONSerialization.jsonObject(with: Data(intoto.stdout.utf8)) as? [String: Any])
        #expect(statement["_type"] as? String == "https://in-toto.io/Statement/v1")
        #expect(statement["predicateType"] as? String == "https://slsa.dev/provenance/v1")
        let subject = (statement["subject"] as? [[String: Any]])?.first?["name"] as? String
        #expect(subject == execution.publishedResult.params["CID"]?.stringValue)
        // The job's receipt is the same each time it is asked for.
        let first = try await cluster.cli("job", "receipts", id, "--output", "json")
        let second = try await cluster.cli("job", "receipts", id, "--output", "json")
        let a = try JSONDecoder().decode(JobReceiptsResponse.self, from: Data(first.stdout.utf8)).job?.cid
        let b = try JSONDecoder().decode(JobReceiptsResponse.self, from: Data(second.stdout.utf8)).job?.cid
        #expect(a != nil && a == b)
    }

    /// The node is killed (SIGKILL) at varied moments while it runs work, twenty times; every
    /// receipt it signed reaches the orchestrator, and they form one chain.
    @Test func aNodeKilledTwentyTimesLeavesOneChainWithNoGap() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator()
        var compute = try cluster.compute(0)
        defer { for process in [orchestrator, compute] where process.isRunning { process.interrupt() } }
        try await cluster.waitForNodes(1)
        var ids: [String] = []
        for round in 0..<20 {
            let submit = try await cluster.cli(
                "wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=0", "--count", "2", "--wait=false", "--id-only")
            ids.append(jobID(submit))
            // Some rounds kill while work runs or reports, some after.
            try await Task.sleep(for: .milliseconds(150 * (round % 6)))
            cluster.kill9(compute)
            compute = try cluster.compute(0)
            try await cluster.waitForNodes(1)
        }
        for id in ids {
            let job = try await cluster.waitForEnd(id, seconds: 120)
            #expect(job.job.state.stateType == .completed, "\(id): \(job.job.state.message)")
        }
        let nodeID = try #require(try await cluster.nodes().first?.info.nodeID)
        let verify = try await cluster.cli("node", "receipts", nodeID, "--verify")
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("form one chain"), "\(verify.stdout)")
        // Every completed execution has its receipt among them.
        let listed = try await cluster.cli("node", "receipts", nodeID, "--output", "json")
        let chain = Set(try JSONDecoder().decode(JobReceiptsResponse.self, from: Data(listed.stdout.utf8)).executions.map(\.cid))
        for id in ids {
            for execution in try await cluster.state(id)?.executions?.items ?? [] where execution.computeState.stateType == .completed {
                #expect(execution.receipt.map(chain.contains) == true, "\(execution.id) has receipt \(String(describing: execution.receipt))")
            }
        }
    }

    /// The node finishes while the orchestrator is down and dies before it could report: its
    /// saved report carries the receipt, which arrives once, with the CID it was signed with.
    @Test func aReceiptWhoseAcknowledgementWasLostArrivesOnceWithTheSameCID() async throws {
        let cluster = try ServeCluster()
        var orchestrator = try cluster.orchestrator()
        var compute = try cluster.compute(0)
        defer { for process in [orchestrator, compute] where process.isRunning { process.interrupt() } }
        try await cluster.waitForNodes(1)
        // No publisher upload: the report (and its receipt) is ready the moment the module ends.
        let dry = try await cluster.cli("wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=2", "--dry-run")
        var spec = try #require(try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])
        var tasks = try #require(spec["Tasks"] as? [[String: Any]])
        tasks[0]["Publisher"] = ["Type": "noop"]
        spec["Tasks"] = tasks
        let file = cluster.base.appendingPathComponent("noop-job.json")
        try JSONSerialization.data(withJSONObject: spec).write(to: file)
        let submitted = try await cluster.cli("job", "run", file.path, "--wait=false", "--id-only")
        let id = jobID(submitted)
        try await cluster.waitForRunning(id)
        cluster.kill9(orchestrator)
        let outbox = cluster.base.appendingPathComponent("c0/compute/outbox.json")
        var saved: String?
        for _ in 0..<300 where saved == nil {
            if let data = try? Data(contentsOf: outbox), let snapshot = try? JSONDecoder().decode(ReliableChannel.Snapshot.self, from: data) {
                for item in snapshot.pending {
                    if case .computeError(let error) = item.message { saved = error.receipt }
                    if case .runResult(let result) = item.message { saved = result.receipt }
                }
            }
            if saved == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let text = try #require(saved, "no receipt in the outbox")
        let expected = ReceiptCheck.cid(of: try #require(Data(base64Encoded: text)))
        cluster.kill9(compute)
        orchestrator = try cluster.orchestrator()
        compute = try cluster.compute(0)
        let job = try await cluster.waitForEnd(id)
        #expect(job.job.state.stateType == .completed, "\(job.job.state)")
        let executions = job.executions?.items ?? []
        #expect(executions.count == 1 && executions.first?.receipt == expected, "\(executions.map(\.receipt))")
        let nodeID = try #require(executions.first?.nodeID)
        let listed = try await cluster.cli("node", "receipts", nodeID, "--output", "json")
        let chain = try JSONDecoder().decode(JobReceiptsResponse.self, from: Data(listed.stdout.utf8)).executions.map(\.cid)
        #expect(chain == [expected])
    }
}
