import Foundation
import Models
import Testing

@Suite("State machines and wire shapes")
struct StateAndWireTests {
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
}
