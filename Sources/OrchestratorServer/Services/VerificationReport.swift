import BlockStore
import Models
import Scheduler
import Wire

/// A job's partitions as the quorum rule sees them now, for `cod job verification`: each
/// partition's results grouped by comparison key, with every replica's verdict. A verified
/// job shows its replicas; a partition under audit (a Fast job's spot check, or a re-check of a
/// result its node produced unchecked) shows the audited result and its re-runs; a Fast job's
/// other partitions show their one unchecked result.
enum VerificationReport {
    static func of(_ job: Job, executions: [Execution], store: FileBlockStore) -> JobVerificationResponse {
        let current = executions.filter { $0.jobVersion == job.version && !$0.isReduce }
        let verified = job.verification?.isVerified == true
        let audited = current.contains { $0.check != nil }
        let spotChecking = job.verification.map { $0.mode == .fast && $0.spotCheck > 0 } ?? false
        guard verified || audited || spotChecking else {
            return JobVerificationResponse(jobID: job.id, verification: job.verification, partitions: [])
        }
        let keys = ComparisonKeys.of(current, job: job, store: store)
        let byPartition = Dictionary(grouping: current, by: \.partitionIndex)
        let partitions = (0..<job.partitionCount).map { partition -> PartitionVerification in
            let attempts = (byPartition[partition] ?? []).sorted { ($0.createTime, $0.id) < ($1.createTime, $1.id) }
            if let original = attempts.first(where: { $0.check != nil }), let check = original.check {
                return audit(of: original, check: check, reruns: attempts.filter { $0.auditOf == original.id }, keys: keys)
            }
            let replicas = attempts.filter { !$0.isAudit }
            guard verified, let settings = job.verification else { return unchecked(partition, replicas, keys: keys, job: job) }
            return quorum(partition, replicas, settings: settings, keys: keys)
        }
        return JobVerificationResponse(jobID: job.id, verification: job.verification, partitions: partitions)
    }

    /// A verified partition's replicas under the job's own settings.
    private static func quorum(_ partition: Int, _ attempts: [Execution], settings: Verification, keys: [String: String]) -> PartitionVerification {
        let replicas = attempts.compactMap { replica($0, keys: keys) }
        let state: String
        var accepted: String?
        switch QuorumRule.decide(replicas, settings: settings) {
        case .accepted(let key, _, _, _):
            state = "Accepted"
            accepted = key
        case .wait, .addReplicas: state = "Deciding"
        case .noConsensus: state = "NoConsensus"
        case .tooManyErrors: state = "TooManyErrors"
        }
        return partitionReport(partition, state: state, accepted: accepted, replicas: replicas, attempts: attempts)
    }

    /// An audited result and its re-runs: the audit's outcome, and the result it accepted.
    private static func audit(of original: Execution, check: ResultCheck, reruns: [Execution], keys: [String: String]) -> PartitionVerification {
        let attempts = [original] + reruns
        let replicas = attempts.compactMap { replica($0, keys: keys) }
        let accepted: String?
        switch check.outcome {
        case .confirmed?, .overturned?: accepted = attempts.first { $0.verdict == .valid }.flatMap { keys[$0.id] }
        case .noConsensus?, .abandoned?: accepted = keys[original.id]
        case nil: accepted = nil
        }
        var report = partitionReport(
            original.partitionIndex, state: check.outcome?.rawValue ?? "Checking", accepted: accepted, replicas: replicas, attempts: attempts)
        report.check = check
        return report
    }

    /// A Fast job's partition: its one accepted result, never compared.
    private static func unchecked(_ partition: Int, _ attempts: [Execution], keys: [String: String], job: Job) -> PartitionVerification {
        let replicas = attempts.compactMap { replica($0, keys: keys) }
        let accepted = job.acceptedResults(among: attempts).first.flatMap { keys[$0.id] }
        return partitionReport(partition, state: accepted == nil ? "Running" : "Unchecked", accepted: accepted, replicas: replicas, attempts: attempts)
    }

    private static func replica(_ execution: Execution, keys: [String: String]) -> Replica? {
        if execution.isActive { return Replica(execution.id, .running, verdict: execution.verdict) }
        if execution.computeState.stateType == .completed {
            return Replica(execution.id, keys[execution.id].map { .result(key: $0) } ?? .failed, verdict: execution.verdict)
        }
        if execution.failure?.neverStarted == true || execution.computeState.stateType == .cancelled { return nil }
        return Replica(execution.id, .failed, verdict: execution.verdict)
    }

    private static func partitionReport(
        _ partition: Int, state: String, accepted: String?, replicas: [Replica], attempts: [Execution]
    ) -> PartitionVerification {
        let byID = Dictionary(attempts.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
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
}
