import BlockStore
import Models
import Scheduler
import Wire

/// A verified job's partitions as the quorum rule sees them now, for `cod job verification`:
/// each partition's results grouped by comparison key, with every replica's verdict.
enum VerificationReport {
    static func of(_ job: Job, executions: [Execution], store: FileBlockStore) -> JobVerificationResponse {
        guard let verification = job.verification, verification.isVerified else {
            return JobVerificationResponse(jobID: job.id, verification: job.verification, partitions: [])
        }
        let current = executions.filter { $0.jobVersion == job.version && !$0.isReduce }
        let keys = ComparisonKeys.of(current, job: job, store: store)
        let byPartition = Dictionary(grouping: current, by: \.partitionIndex)
        let partitions = (0..<job.partitionCount).map { partition -> PartitionVerification in
            let attempts = (byPartition[partition] ?? []).sorted { ($0.createTime, $0.id) < ($1.createTime, $1.id) }
            let byID = Dictionary(attempts.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            let replicas = attempts.compactMap { execution -> Replica? in
                if execution.isActive { return Replica(execution.id, .running, verdict: execution.verdict) }
                if execution.computeState.stateType == .completed {
                    return Replica(execution.id, keys[execution.id].map { .result(key: $0) } ?? .failed, verdict: execution.verdict)
                }
                if execution.failure?.neverStarted == true || execution.computeState.stateType == .cancelled { return nil }
                return Replica(execution.id, .failed, verdict: execution.verdict)
            }
            let state: String
            var accepted: String?
            switch QuorumRule.decide(replicas, settings: verification) {
            case .accepted(let key, _, _, _):
                state = "Accepted"
                accepted = key
            case .wait, .addReplicas: state = "Deciding"
            case .noConsensus: state = "NoConsensus"
            case .tooManyErrors: state = "TooManyErrors"
            }
            let groups = QuorumRule.groups(of: replicas).map { group in
                VerificationGroup(key: group.key, executions: group.executionIDs.compactMap { id in
                    byID[id].map { VerifiedReplica(executionID: $0.id, nodeID: $0.nodeID, verdict: $0.verdict) }
                })
            }
            return PartitionVerification(
                state: state, partition: partition, acceptedKey: accepted, groups: groups,
                running: replicas.filter { $0.outcome == .running }.map(\.executionID),
                failed: replicas.filter { $0.outcome == .failed }.map(\.executionID))
        }
        return JobVerificationResponse(jobID: job.id, verification: verification, partitions: partitions)
    }
}
