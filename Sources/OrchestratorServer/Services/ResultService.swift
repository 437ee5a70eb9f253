import BlockStore
import ContentAddressing
import Foundation
import Logging
import Models
import NodeAPI
import StateStore

/// A job's results: one per completed partition, or, for a job with a reduce task or a
/// partitioned input, one for the whole job. Partitioned jobs' outputs are merged into one
/// DAG when the job completes (``merge(jobID:)``), so reading results never writes.
struct ResultService: Sendable {
    let database: AppDatabase
    let store: FileBlockStore
    let resultsDirectory: URL
    let logger: Logger

    /// The current version's results (a rerun's earlier versions keep theirs in the history).
    func results(jobID: String, baseURL: String) async throws -> [SpecConfig] {
        guard let job = try await database.job(id: jobID) else { throw CodError(.notFound, "job \(jobID) not found") }
        let executions = try await database.executions(jobID: jobID).filter { $0.jobVersion == job.version }
        if let single = try await singleResult(of: job, executions: executions) { return [single] }
        return job.acceptedResults(among: executions)
            .filter { ["cod", "ipfs"].contains($0.publishedResult.normalizedType) }
            .map { Self.describe($0, baseURL: baseURL) }
    }

    /// One partition's result: Bacalhau's shape for IPFS results (the CID is fetchable at
    /// /ipfs/{cid}), or a download URL for a stored bundle.
    static func describe(_ execution: Execution, baseURL: String) -> SpecConfig {
        let partition = JSONValue.int(Int64(execution.partitionIndex))
        if execution.publishedResult.normalizedType == "ipfs" {
            return SpecConfig(type: "ipfs", params: [
                "CID": execution.publishedResult.params["CID"] ?? .null, "ExecutionID": .string(execution.id), "PartitionIndex": partition,
            ])
        }
        return SpecConfig(type: "urlDownload", params: [
            "URL": .string("\(baseURL)/api/v1/orchestrator/results/\(execution.id)"), "ExecutionID": .string(execution.id),
            "PartitionIndex": partition, "SHA256": execution.publishedResult.params["SHA256"] ?? .null,
        ])
    }

    /// The one result of a completed job with a reduce task (the reduce's output) or a
    /// partitioned input (the merged DAG); nil for other jobs, which list one per partition.
    func singleResult(of job: Job, executions: [Execution]) async throws -> SpecConfig? {
        guard job.state.stateType == .completed else { return nil }
        if job.reduceTask != nil {
            guard let reduce = executions.first(where: { $0.isReduce && $0.computeState.stateType == .completed }),
                let cid = reduce.publishedResult.params["CID"]
            else { return nil }
            return SpecConfig(type: "ipfs", params: ["CID": cid, "ExecutionID": .string(reduce.id), "Reduce": .bool(true)])
        }
        guard DatasetPartitioner.partitionedInput(of: job.task) != nil else { return nil }
        guard let merged = try await database.mergedResult(jobID: job.id, version: job.version) else {
            throw CodError(.unavailable, "the merged result of job \(job.id) is still being prepared", hint: "ask again in a moment")
        }
        return SpecConfig(type: "ipfs", params: ["CID": .string(merged), "Partitions": .int(Int64(job.acceptedResults(among: executions).count))])
    }

    /// Whether the job's partitions' outputs are merged into one result when it completes: a
    /// partitioned input without a reduce task.
    static func mergesResults(of job: Job) -> Bool {
        job.reduceTask == nil && DatasetPartitioner.partitionedInput(of: job.task) != nil
    }

    /// Merges a completed partitioned job's outputs into one DAG (see ``ResultMerger``) and
    /// records it; a rerun's merged result replaces the previous version's. Does nothing for
    /// other jobs or when the merge is already recorded, unless `again` (an audit replaced a
    /// partition's result).
    func merge(jobID: String, again: Bool = false) async throws {
        guard let job = try await database.job(id: jobID), job.state.stateType == .completed, Self.mergesResults(of: job) else { return }
        if !again, try await database.mergedResult(jobID: job.id, version: job.version) != nil { return }
        var partitions: [(index: Int, root: CID)] = []
        for execution in job.acceptedResults(among: try await database.executions(jobID: jobID)) {
            guard let text = execution.publishedResult.params["CID"]?.stringValue, let cid = try? CID(text) else {
                throw CodError(.internalError, "partition \(execution.partitionIndex) of job \(jobID) has no result CID to merge")
            }
            partitions.append((execution.partitionIndex, cid))
        }
        let store = self.store
        let cid = try withContent { try store.guardingFromGC { () throws -> CID in
            let cid = try ResultMerger(store: store).merge(partitions)
            try store.pinUnguarded(cid, holder: PinHolder.result(of: job.id))
            return cid
        } }
        if let previous = try await database.saveMergedResult(jobID: job.id, version: job.version, cid: cid.description),
            let old = try? CID(previous)
        {
            _ = try? store.unpin(old, holder: PinHolder.result(of: job.id))
        }
        logger.info("job \(shortID(jobID)): merged \(partitions.count) partitions' results into \(cid)")
    }

    /// A stored result bundle of one execution (`local` publisher), as a file.
    func bundle(executionID: String) async throws -> URL {
        guard executionID.hasPrefix("e-"), !executionID.contains("/"), !executionID.contains(".."),
            try await database.resultInfo(executionID: executionID) != nil
        else { throw CodError(.notFound, "no stored result for execution \(executionID)") }
        return resultsDirectory.appendingPathComponent(executionID + ".tar.gz")
    }
}
