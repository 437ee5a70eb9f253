import Models
import Scheduler

/// The plan harness: nodes, jobs, executions and scheduling inputs built the way the
/// scheduler's table tests describe them.
enum Fixture {
    static let now: Int64 = 1_000_000_000_000

    static func node(
        _ id: String, engines: [String] = ["wasm"], cpu: Double = 2, memory: UInt64 = 4 << 30,
        labels: [String: String] = [:], connection: NodeConnection = .connected, membership: NodeMembership = .approved,
        allocated: Resources = Resources(), networks: [String] = ["none"], gpus: UInt64 = 0, liveness: NodeLiveness? = nil
    ) -> NodeCandidate {
        let info = NodeInfo(
            nodeID: id, labels: labels,
            computeNodeInfo: ComputeNodeInfo(
                executionEngines: engines, publishers: ["local", "noop"], storageSources: ["inline"],
                maxCapacity: Resources(cpu: cpu, memory: memory, disk: 1 << 40, gpu: gpus), networks: networks))
        return NodeCandidate(
            state: NodeState(info: info, membership: membership, connection: connection, lastHeartbeat: now, liveness: liveness),
            allocated: allocated)
    }

    static func job(count: Int = 1, engine: String = "wasm", cpu: String = "", constraints: [LabelSelectorRequirement] = [],
                    state: JobStateType = .pending, queueTimeout: Int64 = 0, network: String = "", gpu: String = "",
                    type: String = "batch") -> Job {
        var task = JobTask(name: "main", engine: SpecConfig(type: engine), publisher: SpecConfig(type: "local"))
        task.resources.cpu = cpu
        task.resources.gpu = gpu
        task.network.type = network
        task.timeouts.queueTimeout = queueTimeout
        return Job(id: "j-1", name: "j", namespace: "default", type: type, count: count, constraints: constraints, tasks: [task],
                   state: JobState(state), version: 1, revision: 1, createTime: now)
    }

    static func execution(_ id: String, node: String, partition: Int = 0, state: ExecutionStateType,
                          desired: ExecutionDesiredStateType = .running, message: String = "") -> Execution {
        // Failures are described as stored records from before typed failures did: the
        // `[retryable] ` marker and the scheduler's own "node … was lost" read as their type.
        let (failure, clean) = state == .failed ? ExecutionFailure.legacy(message: message) : (nil, message)
        return Execution(id: id, namespace: "default", jobID: "j-1", evalID: "v-0", nodeID: node, jobVersion: 1,
                  partitionIndex: partition, allocatedResources: Resources(cpu: 0.1, memory: 1 << 20),
                  desiredState: State(desired), computeState: State(state, message: clean), createTime: now - 10, modifyTime: now - 5,
                  failure: failure)
    }

    static func input(_ job: Job, _ executions: [Execution] = [], nodes: [NodeCandidate], now: Int64 = now) -> SchedulingInput {
        SchedulingInput(
            evaluation: Evaluation(id: "v-test", namespace: "default", jobID: job.id, triggeredBy: .jobRegister, createTime: now, modifyTime: now),
            job: job, executions: executions, nodes: nodes, now: now)
    }
}

