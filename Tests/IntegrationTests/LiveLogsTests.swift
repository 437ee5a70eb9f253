@testable import CodTestKit
import Foundation
import Models
@testable import OrchestratorServer
import Testing
import Wire

/// `cod job logs --follow` as a separate process, reading its output while the job runs.
final class FollowProcess: @unchecked Sendable {
    let process: Process
    private let out: URL
    private let err: URL

    init(_ stack: DevstackProcess, _ arguments: [String]) throws {
        let (process, out, err) = try Run.prepare(
            [try Paths.cod.path] + arguments, environment: ["COD_API_HOST": "127.0.0.1", "COD_API_PORT": String(stack.port)])
        self.process = process
        self.out = out
        self.err = err
        try process.run()
        Registry.shared.add(process)
    }

    var stdout: String { (try? String(contentsOf: out, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: err, encoding: .utf8)) ?? "" }

    /// Waits until stdout holds `text`.
    func waitFor(_ text: String, seconds: Double = 60) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !stdout.contains(text) {
            guard Date() < deadline, process.isRunning else {
                throw TestFailure("`job logs -f` never printed \(text); stdout: \(stdout.suffix(500)) stderr: \(stderr.suffix(500))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func waitForExit(seconds: Double = 120) async throws -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning {
            guard Date() < deadline else {
                process.terminate()
                throw TestFailure("`job logs -f` did not end after the job did; stdout: \(stdout.suffix(500))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }
}

@Suite("Live logs through the orchestrator (separate processes)", .serialized)
struct LiveLogsTests {
    @Test func followShowsOutputWhileTheJobRunsAndEverythingAtTheEnd() async throws {
        let stack = try await EngineStack.shared.get()
        let run = try await stack.cod(
            "exec", "--id-only", "--wait=false", "--", "sh", "-c",
            // Long enough that a loaded machine still sees the job running at its first line.
            "echo first; echo err-first >&2; sleep 20; echo second; printf 'no newline at the end'")
        #expect(run.status == 0, "\(run.stderr)")
        let id = jobID(run)
        let follow = try FollowProcess(stack, ["job", "logs", "-f", id])
        // The first line arrives while the job sleeps: streamed live, not read from the result.
        try await follow.waitFor("first\n")
        #expect(!follow.stdout.contains("second"))
        let state = try await describe(stack, id).job.state.stateType
        #expect(state == .running, "the job is \(state) when its first line arrives")
        #expect(try await follow.waitForExit() == 0)
        #expect(follow.stdout == "first\nsecond\nno newline at the end\n", "\(follow.stdout)")
        #expect(follow.stderr == "err-first\n", "\(follow.stderr)")

        // A finished job's logs, followed or not, are the same.
        for arguments in [["job", "logs", id], ["job", "logs", "-f", id]] {
            let again = try await stack.cod(arguments)
            #expect(again.stdout == follow.stdout && again.stderr == follow.stderr, "\(arguments): \(again.stdout)")
        }
    }

    @Test func followingFastOutputMissesNoLine() async throws {
        let stack = try await EngineStack.shared.get()
        let script = "for i in $(seq 1 20000); do echo out-$i; echo err-$i >&2; done; sleep 1"
        let options = ["--id-only", "--wait=false"]
        for engine in [["exec"] + options, ["docker", "run"] + options + ["localhost/cod-test/busybox:latest"]] {
            let run = try await stack.cod(engine + ["--", "sh", "-c", script])
            #expect(run.status == 0, "\(run.stderr)")
            let follow = try FollowProcess(stack, ["job", "logs", "-f", jobID(run)])
            #expect(try await follow.waitForExit() == 0)
            let expected = (1...20000).map { "out-\($0)\n" }.joined()
            #expect(follow.stdout == expected, "\(engine): \(follow.stdout.split(separator: "\n").count) lines")
            // Standard error holds every line too (after a notice, should a daemon's live view have skipped some).
            let errors = follow.stderr.split(separator: "\n").filter { !$0.hasPrefix("[cod]") }
            #expect(errors.count >= 20000 && errors.suffix(20000).elementsEqual((1...20000).map { "err-\($0)" }), "\(engine)")
        }
    }
}

@Suite("Live log buffering and protocol versions")
struct LiveLogBufferTests {
    func chunk(_ offset: Int, _ text: String, stream: Int = 1) -> NodeMessage.LogChunk {
        NodeMessage.LogChunk(executionID: "e-1", jobID: "j-1", stream: stream, offset: offset, data: Data(text.utf8))
    }

    @Test func chunksExtendContiguouslyAndReplaysChangeNothing() async {
        let logs = LiveLogs()
        #expect(await logs.append(chunk(0, "abc")) == "j-1")
        // A replay from the start after a reconnect adds only what is new.
        #expect(await logs.append(chunk(0, "abcdef")) == "j-1")
        #expect(await logs.append(chunk(2, "cd")) == nil)
        // A chunk past a gap is dropped rather than leaving a hole.
        #expect(await logs.append(chunk(10, "zz")) == nil)
        #expect(await logs.append(chunk(0, "x", stream: 3)) == nil)
        #expect(Array(await logs.bytes(executionID: "e-1", stream: 1, from: 0)) == Array("abcdef".utf8))
        #expect(Array(await logs.bytes(executionID: "e-1", stream: 1, from: 4)) == Array("ef".utf8))
        #expect(await logs.bytes(executionID: "e-1", stream: 2, from: 0).isEmpty)
        await logs.retain([])
        #expect(await logs.bytes(executionID: "e-1", stream: 1, from: 0).isEmpty)
    }

    @Test func liveBufferStopsAtTheLimit() async {
        let logs = LiveLogs()
        let big = String(repeating: "x", count: liveLogLimit - 1)
        #expect(await logs.append(chunk(0, big)) != nil)
        #expect(await logs.append(chunk(big.utf8.count, "yyyy")) != nil)
        #expect(await logs.bytes(executionID: "e-1", stream: 1, from: 0).count == liveLogLimit)
        #expect(await logs.append(chunk(liveLogLimit, "more")) == nil)
    }

    @Test func followersDetectALiveViewThatDiffersFromTheStoredLog() {
        var progress = LiveProgress()
        progress.add(Array("line 1\nline 2\n".utf8)[...])
        #expect(progress.isPrefix(of: Array("line 1\nline 2\nline 3\n".utf8)))
        #expect(!progress.isPrefix(of: Array("line 1\nline 3\n".utf8)))
        #expect(!progress.isPrefix(of: Array("line 1\n".utf8)))
    }

    @Test func protocolVersionsAreNegotiated() {
        #expect(NodeMessage.negotiate(1...2, 1...2) == 2)
        #expect(NodeMessage.negotiate(1...1, 1...2) == 1)
        #expect(NodeMessage.negotiate(3...4, 1...2) == nil)
        let old = NodeMessage.Hello(
            info: NodeInfo(nodeID: "n"), token: "", lastOrchestratorSeq: 0, activeExecutions: [], protocolVersions: nil)
        #expect(old.versionRange == 1...1)
        let bad = NodeMessage.Hello(
            info: NodeInfo(nodeID: "n"), token: "", lastOrchestratorSeq: 0, activeExecutions: [], protocolVersions: [3, 1])
        #expect(bad.versionRange == nil)
    }
}

@Suite("Evaluation broker and capacity waitlist")
struct PriorityOrderingTests {
    @Test func brokerHandsOutHigherPriorityFirstThenOlder() async {
        let broker = EvaluationBroker()
        for (id, priority, created) in [("a", 0, 1), ("b", 5, 2), ("c", 5, 3), ("d", 1, 4)] {
            await broker.enqueue(Evaluation(
                id: "v-\(id)", namespace: "default", jobID: "j-\(id)", triggeredBy: .jobRegister, priority: priority,
                createTime: Int64(created), modifyTime: Int64(created)))
        }
        var order: [String] = []
        while let batch = await broker.take(now: 10) {
            order.append(batch[0].jobID)
            await broker.done(jobID: batch[0].jobID)
        }
        #expect(order == ["j-b", "j-c", "j-d", "j-a"])
    }

    /// A plan answers its job's delayed evaluations too: kept, each would wake later and start
    /// a chain of follow-ups of its own (this multiplied evaluations under node churn).
    @Test func takingAJobDropsItsDelayedEvaluationsAndDuplicatesAreNotQueued() async {
        let broker = EvaluationBroker()
        func evaluation(_ id: String, job: String, created: Int64, waitUntil: Int64 = 0) -> Evaluation {
            Evaluation(id: id, namespace: "default", jobID: job, triggeredBy: .jobQueue, waitUntil: waitUntil,
                       createTime: created, modifyTime: created)
        }
        await broker.enqueue(evaluation("v-old-followup", job: "j-1", created: 1, waitUntil: 50))
        await broker.enqueue(evaluation("v-other-job", job: "j-2", created: 1, waitUntil: 50))
        await broker.enqueue(evaluation("v-now", job: "j-1", created: 5))
        #expect(await broker.isWaiting(jobID: "j-1"))
        let batch = await broker.take(now: 10)
        #expect(batch?.map(\.id) == ["v-now"])
        #expect(await !broker.isWaiting(jobID: "j-1"))
        await broker.done(jobID: "j-1")
        // At time 60, only the other job's follow-up is left to run.
        #expect(await broker.take(now: 60)?.map(\.id) == ["v-other-job"])
        #expect(await broker.take(now: 60) == nil)
    }

    @Test func capacityWaitlistServesHigherPriorityFirst() async {
        let waitlist = CapacityWaitlist()
        await waitlist.add("j-low")
        await waitlist.add("j-high", priority: 10)
        await waitlist.add("j-mid", priority: 5)
        await waitlist.add("j-high2", priority: 10)
        await waitlist.add("j-low")  // already waiting: keeps its place
        #expect(await waitlist.all == ["j-high", "j-high2", "j-mid", "j-low"])
        await waitlist.remove("j-high")
        #expect(await waitlist.first(2) == ["j-high2", "j-mid"])
    }
}
