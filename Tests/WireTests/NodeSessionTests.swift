import Foundation
import Models
import Testing
import Wire

/// The node session's pure core, as transcripts: what each event does to the reliable
/// channel, what the handshake decides, and which state each report moves an execution to.
@Suite("Node session")
struct NodeSessionTests {
    static let progress = NodeMessage.executionProgress(.init(executionID: "e-1", state: .running))
    static func failure(_ id: String) -> NodeMessage {
        .computeError(.init(executionID: id, failure: ExecutionFailure(.trap, retryable: false), message: "trapped", output: nil))
    }

    /// One step of a transcript and what must come out of it.
    enum Step {
        case send(NodeMessage, writes: [UInt64], persists: Bool)
        case ack(UInt64, pendingAfter: [UInt64])
        case welcome(lastHandled: UInt64, replays: [UInt64])
        case receive(UInt64, handled: Bool)
        case disconnect
    }

    static func run(_ steps: [Step], on start: ReliableChannel) -> ReliableChannel {
        var channel = start
        for (index, step) in steps.enumerated() {
            switch step {
            case .send(let message, let writes, let persists):
                let directives = channel.send(message)
                #expect(Self.writes(directives) == writes, "step \(index)")
                #expect(directives.contains { if case .persist = $0 { true } else { false } } == persists, "step \(index)")
            case .ack(let ack, let pendingAfter):
                _ = channel.acknowledged(ack)
                #expect(channel.pending.map(\.seq) == pendingAfter, "step \(index)")
            case .welcome(let lastHandled, let replays):
                #expect(Self.writes(channel.welcomed(lastHandled: lastHandled)) == replays, "step \(index)")
                #expect(channel.connected && !channel.resumed)
            case .receive(let seq, let handled):
                let (inbound, directives) = channel.received(seq: seq)
                #expect(inbound == (handled ? .handle : .drop), "step \(index)")
                // A handled message is acknowledged with a bare ack of all that came without a gap.
                #expect(directives.contains { if case .write(let e) = $0 { e.ack == channel.lastReceived } else { false } } == handled, "step \(index)")
            case .disconnect:
                channel.disconnected()
            }
        }
        return channel
    }

    static func writes(_ directives: [ReliableChannel.Directive]) -> [UInt64] {
        directives.compactMap { if case .write(let envelope) = $0 { envelope.seq } else { nil } }
    }

    @Test func messagesWaitForTheWelcomeAndAreReplayedUntilAcknowledged() {
        let channel = Self.run([
            .send(Self.progress, writes: [], persists: true),          // not connected: kept only
            .welcome(lastHandled: 0, replays: [1]),
            .send(Self.failure("e-1"), writes: [2], persists: true),   // connected: written at once
            .ack(1, pendingAfter: [2]),
            .disconnect,
            .send(Self.failure("e-2"), writes: [], persists: true),
            .welcome(lastHandled: 1, replays: [2, 3]),                   // the peer had 1: 2 and 3 again
            .ack(3, pendingAfter: []),
        ], on: ReliableChannel(session: "s"))
        #expect(channel.nextSeq == 4)
    }

    @Test func thePeersMessagesAreHandledOnceInOrder() {
        let channel = Self.run([
            .receive(1, handled: true), .receive(2, handled: true), .receive(2, handled: false), .receive(1, handled: false),
            .receive(5, handled: true),
        ], on: ReliableChannel(session: "s"))
        // 5 overtook 3 and 4: handled, but acknowledged only once they arrive.
        #expect(channel.lastReceived == 2 && channel.receivedAhead == [5])
    }

    @Test func aMessageThatOvertookAnotherIsHandledOnceAndTheGapIsNotAcknowledged() {
        let channel = Self.run([
            .receive(1, handled: true), .receive(3, handled: true), .receive(3, handled: false),
            .receive(2, handled: true), .receive(2, handled: false), .receive(3, handled: false), .receive(4, handled: true),
        ], on: ReliableChannel(session: "s"))
        #expect(channel.lastReceived == 4 && channel.receivedAhead.isEmpty)
        var ahead = ReliableChannel(session: "s")
        _ = ahead.received(seq: 1)
        let (_, directives) = ahead.received(seq: 3)
        #expect(directives.contains { if case .write(let e) = $0 { e.ack == 1 } else { false } }, "3 is not acknowledged while 2 is missing")
    }

    @Test func aRestartedProcessResumesTheSessionAndNamesTheWorkItReports() throws {
        var first = ReliableChannel(session: "s-old")
        _ = first.welcomed(lastHandled: 0)
        _ = first.send(Self.progress)
        _ = first.send(Self.failure("e-1"))
        for seq in 1...7 { _ = first.received(seq: UInt64(seq)) }
        _ = first.received(seq: 9)
        // What the dying process saved, read back by the next one.
        let saved = try JSONDecoder().decode(ReliableChannel.Snapshot.self, from: JSONEncoder().encode(first.snapshot))
        let next = ReliableChannel(resuming: saved)
        #expect(next.session == "s-old" && next.resumed && !next.connected)
        #expect(next.lastReceived == 7 && next.receivedAhead == [9] && next.nextSeq == 3)
        #expect(next.reportedExecutions == ["e-1"])
        _ = Self.run([.welcome(lastHandled: 1, replays: [2])], on: next)
    }

    @Test func snapshotsFromEarlierVersionsLoad() throws {
        let old = Data(#"{"session": "s", "nextSeq": 4, "lastOrchestratorSeq": 9, "pending": []}"#.utf8)
        let channel = ReliableChannel(resuming: try JSONDecoder().decode(ReliableChannel.Snapshot.self, from: old))
        #expect(channel.lastReceived == 9 && channel.nextSeq == 4)
    }

    // MARK: The handshake

    static func execution(_ id: String, node: String = "n-a", state: ExecutionStateType, desired: ExecutionDesiredStateType = .running) -> Execution {
        Execution(id: id, namespace: "default", jobID: "j-1", evalID: "v-1", nodeID: node, jobVersion: 1, partitionIndex: 0,
                  desiredState: State(desired), computeState: State(state), createTime: 1, modifyTime: 1)
    }

    @Test(arguments: [
        ("s", "s", false, false, false), ("s", "s", true, false, true), ("s", "t", false, true, true), ("", "t", false, true, true),
    ])
    func whoMayHaveLostWork(stored: String, hello: String, resumed: Bool, newSession: Bool, mayHaveLost: Bool) {
        #expect(HandshakeRules.isNewSession(stored: stored, hello: hello) == newSession)
        #expect(HandshakeRules.mayHaveLostWork(stored: stored, hello: hello, resumed: resumed) == mayHaveLost)
    }

    @Test func aRestartedNodeLosesWhatItNoLongerRunsAndQueuedWorkCostsNothing() {
        let live = [
            Self.execution("e-queued", state: .new), Self.execution("e-running", state: .running),
            Self.execution("e-still", state: .running), Self.execution("e-reported", state: .running),
        ]
        let lost = HandshakeRules.lost(live, nodeID: "n-a", running: ["e-still"], reported: ["e-reported"])
        #expect(lost.map(\.execution.id) == ["e-queued", "e-running"])
        #expect(lost.map(\.failure) == [
            ExecutionFailure(.nodeRestarted, retryable: true, neverStarted: true), ExecutionFailure(.nodeRestarted, retryable: true),
        ])
        #expect(lost.allSatisfy { $0.message.contains("restarted and no longer runs") })
    }

    @Test func workANodeStillRunsIsStoppedWhenItWasGivenUp() {
        #expect(HandshakeRules.stopReason(running: Self.execution("e-1", state: .running), nodeID: "n-a") == nil)
        #expect(HandshakeRules.stopReason(running: nil, nodeID: "n-a")?.contains("no record") == true)
        #expect(HandshakeRules.stopReason(running: Self.execution("e-1", node: "n-b", state: .running), nodeID: "n-a")?.contains("ran elsewhere") == true)
        #expect(HandshakeRules.stopReason(running: Self.execution("e-1", state: .failed, desired: .stopped), nodeID: "n-a") != nil)
    }

    // MARK: Reports to transitions

    @Test func eachReportMovesItsExecution() {
        let output = RunCommandResult(stdout: "hi", exitCode: 0)
        let table: [(NodeMessage, ExecutionStateType, ExecutionFailure?)] = [
            (.bidResult(.init(executionID: "e-1", accepted: true, reason: "")), .bidAccepted, nil),
            (.bidResult(.init(executionID: "e-1", accepted: false, reason: "full")), .askForBidRejected,
             ExecutionFailure(.bidRejected, retryable: true, neverStarted: true)),
            (Self.progress, .running, nil),
            (.executionProgress(.init(executionID: "e-1", state: .publishing)), .publishing, nil),
            (.runResult(.init(executionID: "e-1", output: output, resultBundleSize: -1, resultBundleSHA256: "", resultCID: "bafyx")), .completed, nil),
            (Self.failure("e-1"), .failed, ExecutionFailure(.trap, retryable: false)),
        ]
        for (message, state, failure) in table {
            let transition = ReportTransition.of(message)
            #expect(transition?.executionID == "e-1")
            #expect(transition?.newState == state)
            #expect(transition?.failure == failure)
        }
        let bundle = ReportTransition.of(.runResult(.init(executionID: "e-1", output: output, resultBundleSize: 10, resultBundleSHA256: "ab")))
        #expect(bundle?.published?.normalizedType == "cod")
        #expect(bundle?.storedBundle?.size == 10)
        #expect(ReportTransition.of(.ack) == nil)
        // Usage is a stranger's claim it is paid by: impossible figures are dropped, not priced.
        let claims: [(Usage, Bool)] = [
            (Usage(wallSeconds: 2, cpuSeconds: 1.0, peakMemoryBytes: 100 << 20, memoryGiBSeconds: 0.2), true),
            (Usage(wallSeconds: -1), false),
            (Usage(wallSeconds: 1, cpuSeconds: -0.5), false),
            (Usage(wallSeconds: 1, memoryGiBSeconds: .infinity), false),
            (Usage(wallSeconds: 1, cpuSeconds: 5000), false),
            (Usage(wallSeconds: 400 * 86_400), false),
            (Usage(wallSeconds: 1, meteredBy: String(repeating: "x", count: 101)), false),
        ]
        for (usage, kept) in claims {
            var result = NodeMessage.RunResult(executionID: "e-1", output: output, resultBundleSize: -1, resultBundleSHA256: "", resultCID: "bafyx")
            result.usage = usage
            #expect((ReportTransition.of(.runResult(result))?.usage != nil) == kept, "\(usage)")
            var failed = NodeMessage.ComputeError(executionID: "e-1", failure: ExecutionFailure(.trap, retryable: false), message: "x", output: nil)
            failed.usage = usage
            #expect((ReportTransition.of(.computeError(failed))?.usage != nil) == kept, "\(usage)")
        }
        // A node from before typed failures sends only `retryable`.
        var legacy = NodeMessage.ComputeError(executionID: "e-1", failure: ExecutionFailure(.trap, retryable: true), message: "x", output: nil)
        legacy.failure = nil
        #expect(ReportTransition.of(.computeError(legacy))?.failure == ExecutionFailure(.engineError, retryable: true))
        // Node failures are the orchestrator's to conclude; a node claiming one reports an engine error.
        let claim = NodeMessage.ComputeError(executionID: "e-1", failure: ExecutionFailure(.nodeLost, retryable: true), message: "x", output: nil)
        #expect(ReportTransition.of(.computeError(claim))?.failure == ExecutionFailure(.engineError, retryable: true))
    }
}
