import Foundation
import Models
import Testing

@Suite("State machines and wire shapes")
struct StateAndWireTests {
    /// Every transition of the membership state machine, with a 5 s heartbeat and 30 s timeout.
    @Test(arguments: [
        (NodeLiveness.healthy, NodeLivenessMachine.Event.heartbeat, NodeLiveness.healthy, NodeLivenessMachine.Effect.none),
        (.healthy, .handshake, .healthy, .none),
        (.healthy, .silence(4_000_000_000), .healthy, .none),
        (.healthy, .silence(15_000_000_000), .healthy, .none),
        (.healthy, .silence(15_000_000_001), .suspect, .suspected),
        (.healthy, .silence(31_000_000_000), .lost, .lost),
        (.suspect, .silence(20_000_000_000), .suspect, .none),
        (.suspect, .heartbeat, .healthy, .recovered),
        (.suspect, .handshake, .healthy, .recovered),
        (.suspect, .silence(30_000_000_001), .lost, .lost),
        (.lost, .silence(99_000_000_000), .lost, .none),
        (.lost, .heartbeat, .lost, .none),
        (.lost, .handshake, .healthy, .rejoined),
    ])
    func livenessMachine(
        from: NodeLiveness, event: NodeLivenessMachine.Event, to: NodeLiveness, effect: NodeLivenessMachine.Effect
    ) {
        let policy = LivenessPolicy(heartbeatInterval: 5_000_000_000, lostAfter: 30_000_000_000)
        let (next, happened) = NodeLivenessMachine.step(from, event, policy: policy)
        #expect(next == to)
        #expect(happened == effect)
    }

    @Test func livenessPolicyNeverSuspectsAHealthyInterval() {
        // Suspect after three missed heartbeats, or halfway to lost, but never within 1.5 intervals.
        #expect(LivenessPolicy(heartbeatInterval: 5, lostAfter: 30).suspectAfter == 15)
        #expect(LivenessPolicy(heartbeatInterval: 2, lostAfter: 5).suspectAfter == 3)
        #expect(LivenessPolicy(heartbeatInterval: 4, lostAfter: 5).suspectAfter == 5)
        #expect(LivenessPolicy(suspectAfter: 9, lostAfter: 5).suspectAfter == 5)
    }

    @Test func nodeStateLivenessRoundTripsAndDefaultsFromOlderRecords() throws {
        let node = NodeState(info: NodeInfo(nodeID: "n-1"), liveness: .suspect)
        let decoded = try JSONDecoder().decode(NodeState.self, from: JSONEncoder().encode(node))
        #expect(decoded.liveness == .suspect)
        // A record stored before liveness existed: derived from the connection.
        for (connection, expected) in [(NodeConnection.disconnected, NodeLiveness.lost), (.connected, .healthy)] {
            var object = try #require(
                try JSONSerialization.jsonObject(with: JSONEncoder().encode(NodeState(info: NodeInfo(nodeID: "n-2"), connection: connection)))
                    as? [String: Any])
            object["Liveness"] = nil
            let old = try JSONSerialization.data(withJSONObject: object)
            #expect(try JSONDecoder().decode(NodeState.self, from: old).liveness == expected)
        }
    }

    @Test func jobStateTransitions() {
        #expect(JobStateType.pending.canTransition(to: .running))
        #expect(JobStateType.running.canTransition(to: .completed))
        #expect(JobStateType.queued.canTransition(to: .running))
        for terminal in [JobStateType.completed, .failed, .stopped] {
            #expect(terminal.isTerminal)
            for next in JobStateType.allCases where next != terminal {
                #expect(!terminal.canTransition(to: next), "\(terminal) -> \(next)")
            }
        }
    }

    /// A transcript of one execution as the compute side reports it: late and duplicate
    /// reports are refused, so replays change nothing.
    @Test func executionStateTranscript() {
        var state = ExecutionStateType.new
        func report(_ next: ExecutionStateType) -> Bool {
            guard state.canTransition(to: next) else { return false }
            state = next
            return true
        }
        #expect(report(.bidAccepted))
        #expect(report(.running))
        #expect(!report(.bidAccepted))  // late duplicate
        #expect(report(.publishing))
        #expect(report(.completed))
        #expect(!report(.failed))  // terminal stays terminal
        #expect(!report(.running))
        #expect(state == .completed)
    }

    @Test func executionSerialisesLikeBacalhau() throws {
        let execution = Execution(
            id: "e-1", namespace: "default", jobID: "j-1", evalID: "v-1", nodeID: "n-1", jobVersion: 1, partitionIndex: 0,
            desiredState: State(.running), computeState: State(.completed),
            runOutput: RunCommandResult(stdout: "out", stderr: "err", exitCode: 3), createTime: 1, modifyTime: 2)
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(execution)) as! [String: Any]
        let compute = object["ComputeState"] as! [String: Any]
        #expect(compute["StateType"] as? Int == 9)
        #expect((object["DesiredState"] as! [String: Any])["StateType"] as? Int == 1)
        let output = object["RunOutput"] as! [String: Any]
        #expect(output["stderr"] as? String == "err")  // Bacalhau's lower-case key
        #expect(output["Stdout"] as? String == "out")
        #expect(output["ExitCode"] as? Int == 3)
        #expect(object["JobID"] as? String == "j-1")
    }

    @Test func jobRoundTripsThroughJSON() throws {
        var task = JobTask(name: "main", engine: SpecConfig(type: "wasm", params: ["EntryModule": "/m.wasm", "Parameters": ["a", 1]]))
        task.resultPaths = [ResultPath(name: "outputs", path: "/outputs")]
        let job = Job(id: "j-1", name: "x", namespace: "default", count: 3, labels: ["a": "b"], tasks: [task], state: JobState(.running))
        let decoded = try JSONDecoder().decode(Job.self, from: JSONEncoder().encode(job))
        #expect(decoded == job)
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(job)) as! [String: Any]
        #expect((object["State"] as! [String: Any])["StateType"] as? String == "Running")
        #expect(object["Tasks"] is [Any])
    }

    @Test func rfc3339RoundTrip() {
        #expect(RFC3339.format(nanos: 0) == "1970-01-01T00:00:00Z")
        #expect(RFC3339.format(nanos: 1_795_249_497_123_456_789) == "2026-11-21T08:24:57.123456789Z")
        #expect(RFC3339.parse("2026-11-21T08:24:57.123456789Z") == 1_795_249_497_123_456_789)
        #expect(RFC3339.parse("2026-11-21T09:24:57+01:00") == 1_795_249_497_000_000_000)
        #expect(RFC3339.parse("yesterday") == nil)
    }

    @Test func idsAreDeterministicPerSeed() {
        var a = IDGenerator(rng: SplitMix64(seed: 42))
        var b = IDGenerator(rng: SplitMix64(seed: 42))
        let id = a.jobID()
        #expect(id == b.jobID())
        #expect(id.hasPrefix("j-"))
        #expect(id.count == 38)
        #expect(shortID(id).count == 10)
    }

    /// Usage's wire shape: "not measured" stays absent (never 0), and records from before
    /// metering or the outside-bytes split still decode.
    @Test func usageAndInputStatsKeepTheirShape() throws {
        let unmeasured = Usage(wallSeconds: 1.5, bytesReadLocally: 10)
        let json = String(decoding: try JSONEncoder().encode(unmeasured), as: UTF8.self)
        #expect(!json.contains("CPUSeconds") && !json.contains("PeakMemoryBytes") && json.contains("\"BytesReadLocally\":10"))
        #expect(try JSONDecoder().decode(Usage.self, from: Data(json.utf8)) == unmeasured)
        let minimal = try JSONDecoder().decode(Usage.self, from: Data(#"{"WallSeconds": 2}"#.utf8))
        #expect(minimal.cpuSeconds == nil && minimal.bytesPublished == 0 && minimal.problem == nil)
        let old = try JSONDecoder().decode(InputStats.self, from: Data(#"{"LocalBytes": 1, "NetworkBytes": 2, "Files": 1}"#.utf8))
        #expect(old.outsideBytes == 0 && old.networkBytes == 2)
        #expect(!String(decoding: try JSONEncoder().encode(old), as: UTF8.self).contains("OutsideBytes"))
        let sum = InputStats(localBytes: 1, networkBytes: 5, outsideBytes: 3, files: 1) + old
        #expect(sum == InputStats(localBytes: 2, networkBytes: 7, outsideBytes: 3, files: 2))
    }
}
