@testable import CodTestKit
import Models
import Scheduler
import Testing

/// Placement of partitioned jobs next to their data, and the reduce phase.
@Suite("Data locality and reduce")
struct DataLocalityTests {
    /// Three shards of two files each; shard i is held by the nodes in `holders[i]`.
    static func manifest() -> DatasetManifest {
        let shards = (0..<3).map { index in
            DatasetShard(
                index: index, cid: "shard\(index)", bytes: 200,
                files: [DatasetFile(path: "f\(index)a", cid: "c\(index)a", size: 100), DatasetFile(path: "f\(index)b", cid: "c\(index)b", size: 100)])
        }
        return DatasetManifest(cid: "root", name: "d", bytes: 600, replication: 1, shards: shards)
    }

    static func node(_ id: String, holds: [String], cpu: Double = 2, connection: NodeConnection = .connected) -> NodeCandidate {
        var node = Fixture.node(id, engines: ["process"], cpu: cpu, connection: connection)
        node.state.info.computeNodeInfo.storageSources = ["inline", "ipfs"]
        node.state.info.computeNodeInfo.heldRoots = holds
        return node
    }

    static func job(locality: DataLocality, reduce: Bool = false) -> Job {
        var job = Fixture.job(count: 3, engine: "process")
        job.tasks[0].inputSources = [InputSource(
            source: SpecConfig(type: "ipfs", params: ["CID": "root", "Partition": ["By": "shard"], "Locality": .string(locality.rawValue)]),
            target: "/inputs")]
        if reduce { job.tasks.append(JobTask(name: "reduce", engine: SpecConfig(type: "process"), publisher: SpecConfig(type: "local"))) }
        return job
    }

    static func input(_ job: Job, _ executions: [Execution] = [], nodes: [NodeCandidate], locality: DataLocality) -> SchedulingInput {
        var input = Fixture.input(job, executions, nodes: nodes)
        input.partitioning = PartitionedData(slices: DatasetPartitioner.slices(manifest(), PartitionSpec(by: .shard, locality: locality)), locality: locality)
        return input
    }

    @Test func eachPartitionGoesToTheNodeHoldingItsShard() {
        // Node a holds shards 0 and 1, b holds 2, c holds nothing and is the least loaded.
        let nodes = [Self.node("a", holds: ["shard0", "shard1"]), Self.node("b", holds: ["shard2"]), Self.node("c", holds: [], cpu: 16)]
        for locality in DataLocality.allCases {
            let plan = BatchScheduler().schedule(Self.input(Self.job(locality: locality), nodes: nodes, locality: locality))
            let placement = Dictionary(uniqueKeysWithValues: plan.newExecutions.map { ($0.partitionIndex, $0.nodeID) })
            #expect(placement == [0: "a", 1: "a", 2: "b"], "\(locality): \(placement)")
        }
    }

    @Test func localDataWithNoConnectedHolderFailsWithTheShardAndWhatToDo() {
        let nodes = [Self.node("a", holds: ["shard0", "shard1"]), Self.node("b", holds: ["shard2"], connection: .disconnected)]
        let plan = BatchScheduler().schedule(Self.input(Self.job(locality: .local), nodes: nodes, locality: .local))
        #expect(plan.jobState?.stateType == .failed)
        let message = plan.jobState?.message ?? ""
        #expect(message.contains("partition 2 cannot run: no connected node holds its data (shard shard2)"), "\(message)")
        #expect(message.contains("Locality: any"))
        #expect(plan.newExecutions.isEmpty)
    }

    @Test func anyLocalityRunsAPartitionWithoutAHolderElsewhere() {
        let nodes = [Self.node("a", holds: ["shard0", "shard1"]), Self.node("b", holds: ["shard2"], connection: .disconnected)]
        let plan = BatchScheduler().schedule(Self.input(Self.job(locality: .any), nodes: nodes, locality: .any))
        #expect(plan.newExecutions.count == 3 && plan.newExecutions.allSatisfy { $0.nodeID == "a" })
    }

    @Test func aBusyHolderMeansWaitingNotRunningAwayFromTheData() {
        // b holds shard 2 but is full; a must not take partition 2.
        var busy = Self.node("b", holds: ["shard2"], cpu: 0.5)
        busy.allocated = Resources(cpu: 0.5, memory: 0)
        let nodes = [Self.node("a", holds: ["shard0", "shard1"]), busy]
        let plan = BatchScheduler().schedule(Self.input(Self.job(locality: .local), nodes: nodes, locality: .local))
        #expect(Set(plan.newExecutions.map(\.partitionIndex)) == [0, 1])
        #expect(plan.jobState?.stateType == .running)
        #expect(plan.newEvaluations.contains { $0.waitUntil > 0 }, "a follow-up evaluation is due")
    }

    @Test func aLostHoldersPartitionMovesToAReplica() {
        let nodes = [Self.node("a", holds: ["shard0", "shard1", "shard2"]), Self.node("b", holds: ["shard2"], connection: .disconnected)]
        let executions = [
            Fixture.execution("e0", node: "a", partition: 0, state: .completed),
            Fixture.execution("e1", node: "a", partition: 1, state: .completed),
            Fixture.execution("e2", node: "b", partition: 2, state: .running),
        ]
        let plan = BatchScheduler().schedule(Self.input(Self.job(locality: .local), executions, nodes: nodes, locality: .local))
        #expect(plan.newExecutions.map(\.nodeID) == ["a"] && plan.newExecutions.first?.partitionIndex == 2)
    }

    @Test func reduceRunsOnceAfterEveryPartitionAndDecidesTheJob() {
        let nodes = [Self.node("a", holds: ["shard0", "shard1", "shard2"])]
        let job = Self.job(locality: .local, reduce: true)
        let maps = (0..<3).map { Fixture.execution("e\($0)", node: "a", partition: $0, state: .completed) }
        // All partitions done: one reduce execution is placed and the job keeps running.
        let plan = BatchScheduler().schedule(Self.input(job, maps, nodes: nodes, locality: .local))
        #expect(plan.newExecutions.count == 1 && plan.newExecutions[0].isReduce && plan.newExecutions[0].taskName == "reduce")
        #expect(plan.jobState == nil || plan.jobState?.stateType == .running)
        // Not before: with a partition still running nothing reduces.
        var early = maps
        early[2].computeState = State(.running)
        #expect(BatchScheduler().schedule(Self.input(job, early, nodes: nodes, locality: .local)).newExecutions.isEmpty)
        // The reduce completing completes the job; failing for good fails it with the reason.
        var reduce = Fixture.execution("r", node: "a", state: .completed)
        reduce.taskName = "reduce"
        #expect(BatchScheduler().schedule(Self.input(job, maps + [reduce], nodes: nodes, locality: .local)).jobState?.stateType == .completed)
        reduce.computeState = State(.failed, message: "exit status 3")
        let failed = BatchScheduler().schedule(Self.input(job, maps + [reduce], nodes: nodes, locality: .local))
        #expect(failed.jobState?.stateType == .failed)
        #expect(failed.jobState?.message.contains("reduce task reduce failed") == true, "\(failed.jobState?.message ?? "")")
    }
}
