import BlockStore
import ContentAddressing
import Models

/// The comparison key of a verified job's result: the CID of a directory holding only the
/// compared entries of its result DAG (`exitCode`, the result paths, `stdout` or `stderr` when
/// asked), built from the DAG in this orchestrator's store, so equal keys mean equal compared
/// content and nothing is compared byte by byte. A node's claim of a CID it did not upload, or
/// of a DAG that is not a directory, gets no key.
enum ComparisonKeys {
    static let logs: Set<String> = ["stdout", "stderr"]

    static func key(of result: CID, compare: [String], store: FileBlockStore) -> String? {
        let exporter = Exporter(store: store)
        guard let entries = try? exporter.list(result) else { return nil }
        let wanted = Set(compare)
        let kept = entries.filter { entry in
            if wanted.contains(entry.name) { return true }
            // `outputs`: every result path (everything but the logs and the exit code).
            return wanted.contains("outputs") && !logs.contains(entry.name) && entry.name != "exitCode"
        }
        let directory = kept.map { DirectoryEntry(name: Array($0.name.utf8), node: ImportedNode(cid: $0.cid, size: $0.tsize, tsize: $0.tsize)) }
        return (try? DirectoryBuilder.build(directory, options: .cidV1, sink: { _, _ in }))?.cid.description
    }

    /// The keys of a verified job's completed executions that published a CID; for another
    /// job, of the results that are audited (spot-checked or re-checked) and their re-runs.
    static func of(_ executions: [Execution], job: Job, store: FileBlockStore) -> [String: String] {
        let verified = job.isVerified
        let audited = Set(executions.compactMap(\.auditOf) + executions.filter { $0.check != nil }.map(\.id))
        let spotChecking = (job.verification?.spotCheck ?? 0) > 0
        guard verified || spotChecking || !audited.isEmpty else { return [:] }
        let compare = job.verification?.compare ?? Verification.defaultCompare
        var keys: [String: String] = [:]
        for execution in executions where execution.computeState.stateType == .completed && !execution.isReduce {
            guard verified || execution.isAudit || audited.contains(execution.id) || (spotChecking && job.spotChecks(partition: execution.partitionIndex)),
                  let text = execution.publishedResult.params["CID"]?.stringValue, let cid = try? CID(text),
                  let key = key(of: cid, compare: compare, store: store)
            else { continue }
            keys[execution.id] = key
        }
        return keys
    }
}
