import ContentAddressing
import Foundation
import GRDB
public import Models

extension AppDatabase {
    /// Stores (or replaces) a dataset manifest, under its root as a CIDv1 string (a job may
    /// name it as v0).
    public func saveDataset(_ manifest: DatasetManifest) async throws {
        try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO datasets (cid, name, createTime, data) VALUES (?, ?, ?, ?)
                    ON CONFLICT(cid) DO UPDATE SET name = excluded.name, data = excluded.data
                    """,
                arguments: [CID.v1String(manifest.cid), manifest.name, manifest.createTime, try Self.encode(manifest)])
        }
    }

    public func dataset(cid: String) async throws -> DatasetManifest? {
        try await writer.read { db in try Self.fetchDataset(cid, db) }
    }

    /// Every dataset, newest first.
    public func datasets() async throws -> [DatasetManifest] {
        try await writer.read { db in
            try Data.fetchAll(db, sql: "SELECT data FROM datasets ORDER BY createTime DESC")
                .map { try Self.decode(DatasetManifest.self, $0) }
        }
    }

    /// Forgets a dataset's manifest; returns whether there was one.
    public func deleteDataset(cid: String) async throws -> Bool {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM datasets WHERE cid = ?", arguments: [CID.v1String(cid)])
            return db.changesCount > 0
        }
    }

    /// The number of partitions a job's partitioned input makes; nil without one. Throws a
    /// bad request when the input names no known dataset or makes no partition.
    public func partitionCount(of job: Job) async throws -> Int? {
        try await writer.read { db in
            guard let (_, slices) = try Self.partitionSlices(of: job, db) else { return nil }
            guard !slices.isEmpty else { throw CodError(.badRequest, "the partitioned input's dataset has no files") }
            return slices.count
        }
    }

    /// The merged result of a partitioned job's version, once built.
    /// Completed jobs that may read a partitioned input (a cheap filter on the stored spec:
    /// the caller checks each job, and whether its version's merge is recorded).
    public func completedJobsAwaitingMerge() async throws -> [String] {
        try await writer.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT id FROM jobs WHERE state = 'Completed' AND instr(data, CAST('"Partition"' AS BLOB)) > 0
                    """)
        }
    }

    public func mergedResult(jobID: String, version: UInt64) async throws -> String? {
        try await writer.read { db in
            try String.fetchOne(db, sql: "SELECT cid FROM mergedResults WHERE jobID = ? AND version = ?", arguments: [jobID, version])
        }
    }

    /// Records the merged result of a job's version; returns the CID it replaced, if any.
    public func saveMergedResult(jobID: String, version: UInt64, cid: String) async throws -> String? {
        try await writer.write { db in
            let previous = try String.fetchOne(db, sql: "SELECT cid FROM mergedResults WHERE jobID = ?", arguments: [jobID])
            try db.execute(
                sql: "INSERT OR REPLACE INTO mergedResults (jobID, version, cid) VALUES (?, ?, ?)", arguments: [jobID, version, cid])
            return previous == cid ? nil : previous
        }
    }

    static func fetchDataset(_ cid: String, _ db: Database) throws -> DatasetManifest? {
        try Data.fetchOne(db, sql: "SELECT data FROM datasets WHERE cid = ?", arguments: [CID.v1String(cid)])
            .map { try decode(DatasetManifest.self, $0) }
    }

    /// The slices of a job's partitioned input, one per partition; nil when the job has no
    /// partitioned input. Throws when the input names no known dataset.
    static func partitionSlices(of job: Job, _ db: Database) throws -> (spec: PartitionSpec, slices: [PartitionSlice])? {
        guard let (_, input, spec) = DatasetPartitioner.partitionedInput(of: job.task) else { return nil }
        let cid = input.source.params["CID"]?.stringValue ?? ""
        guard let manifest = try fetchDataset(cid, db) else {
            throw CodError(
                .badRequest, "\(cid) is not a dataset this orchestrator knows, so it cannot be partitioned",
                hint: "add the folder with cod data add DIR --shards K (cod data datasets lists datasets)")
        }
        return (spec, DatasetPartitioner.slices(manifest, spec))
    }

    /// What one execution is told to run: for a partition of a partitioned input, the input
    /// lists that partition's files; for the reduce, the job's reduce task reads each
    /// partition's result at `/inputs/<partition>`.
    static func executionView(of job: Job, for execution: Execution, slices: [PartitionSlice]?, _ db: Database) throws -> Job {
        var view = job
        if execution.isReduce, let reduce = job.reduceTask {
            var task = reduce
            for result in job.acceptedResults(among: try fetchExecutions(jobID: job.id, db)) {
                guard let cid = result.publishedResult.params["CID"]?.stringValue else { continue }
                task.inputSources.append(
                    InputSource(source: SpecConfig(type: "ipfs", params: ["CID": .string(cid)]), target: "/inputs/\(result.partitionIndex)"))
            }
            view.tasks = [task]
            return view
        }
        // A map execution gets its own task only: the reduce task is sent when it runs.
        view.tasks = Array(job.tasks.prefix(1))
        if let slices, let (index, input, _) = DatasetPartitioner.partitionedInput(of: job.task),
            slices.indices.contains(execution.partitionIndex)
        {
            view.tasks[0].inputSources[index] = DatasetPartitioner.sliceInput(input, slice: slices[execution.partitionIndex])
        }
        return view
    }
}
