import ContentAddressing
import Foundation
import GRDB
public import Models

extension AppDatabase {
    static func registerDatasetVersions(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v14-dataset-versions") { db in
            try db.execute(sql: """
                CREATE TABLE datasetVersions (
                    name TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    cid TEXT NOT NULL,
                    shards INTEGER NOT NULL,
                    owner TEXT NOT NULL,
                    time INTEGER NOT NULL,
                    PRIMARY KEY (name, version)
                );
                """)
        }
    }

    /// Stores (or replaces) a dataset manifest, under its root as a CIDv1 string (a job may
    /// name it as v0).
    public func saveDataset(_ manifest: DatasetManifest) async throws {
        try await writer.write { db in try Self.insert(dataset: manifest, db) }
    }

    static func insert(dataset manifest: DatasetManifest, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO datasets (cid, name, createTime, data) VALUES (?, ?, ?, ?)
                ON CONFLICT(cid) DO UPDATE SET name = excluded.name, data = excluded.data
                """,
            arguments: [CID.v1String(manifest.cid), manifest.name, manifest.createTime, try Self.encode(manifest)])
    }

    /// Stores `manifest` as the next version of the named dataset `manifest.name`, which must
    /// stand at version `after` (0: not yet made), in one transaction: the head is compared and
    /// moved there, so of two adds made from the same version one lands and the other is told
    /// to add again. A new version keeps every shard of the one before, in order, and adds at
    /// least one; `mayAppend` sees the current head (to check who owns it) before anything is
    /// written. Returns the new version.
    public func saveDatasetVersion(
        _ manifest: DatasetManifest, after: Int, owner: String, mayAppend: @escaping @Sendable (DatasetVersion) throws -> Void = { _ in }
    ) async throws -> DatasetVersion {
        try await writer.write { db in
            let head = try Self.datasetHead(name: manifest.name, db)
            guard (head?.version ?? 0) == after else {
                throw CodError(
                    .conflict,
                    "dataset \(manifest.name) is at version \(head?.version ?? 0), not \(after): another add landed first",
                    hint: "add again (cod data add retries by itself)")
            }
            if let head {
                try mayAppend(head)
                guard let previous = try Self.fetchDataset(head.cid, db) else {
                    throw CodError(
                        .conflict, "version \(head.version) of dataset \(manifest.name) (\(head.cid)) was deleted, so nothing can follow it",
                        hint: "add the folder under a new dataset name")
                }
                guard manifest.shards.count > previous.shards.count, Array(manifest.shards.prefix(previous.shards.count)) == previous.shards else {
                    throw CodError(
                        .badRequest,
                        "a new version of dataset \(manifest.name) keeps its \(previous.shards.count) shards as they are and adds at least one",
                        hint: "cod data add DIR --dataset \(manifest.name) builds such a version")
                }
            }
            let version = DatasetVersion(
                name: manifest.name, version: after + 1, cid: CID.v1String(manifest.cid), shards: manifest.shards.count,
                owner: head?.owner ?? owner, time: manifest.createTime)
            try Self.insert(dataset: manifest, db)
            try db.execute(
                sql: "INSERT INTO datasetVersions (name, version, cid, shards, owner, time) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [version.name, version.version, version.cid, version.shards, version.owner, version.time])
            return version
        }
    }

    /// The newest version of a named dataset.
    public func datasetHead(name: String) async throws -> DatasetVersion? {
        try await writer.read { db in try Self.datasetHead(name: name, db) }
    }

    static func datasetHead(name: String, _ db: Database) throws -> DatasetVersion? {
        try datasetVersion(db, "WHERE name = ? ORDER BY version DESC LIMIT 1", [name])
    }

    static func datasetVersion(_ db: Database, _ clause: String, _ arguments: StatementArguments) throws -> DatasetVersion? {
        try Row.fetchOne(db, sql: "SELECT * FROM datasetVersions " + clause, arguments: arguments).map(datasetVersion)
    }

    static func datasetVersion(_ row: Row) -> DatasetVersion {
        DatasetVersion(name: row["name"], version: row["version"], cid: row["cid"], shards: row["shards"], owner: row["owner"], time: row["time"])
    }

    /// What a dataset trigger of `scheduleID` has not yet started a job for: the newest version
    /// of dataset `name` with its manifest, and the version the trigger last started a job for
    /// (its run key is `dataset:NAME:vN`), or, before the first, the version that stood when
    /// the schedule was made (`since`, Unix nanoseconds; nil: none). Nil when there is nothing
    /// new, or the newest version's manifest was deleted.
    public func datasetChange(
        name: String, scheduleID: String, since: Int64
    ) async throws -> (head: DatasetVersion, manifest: DatasetManifest, base: DatasetVersion?)? {
        try await writer.read { db in
            guard let head = try Self.datasetHead(name: name, db) else { return nil }
            let prefix = "dataset:\(name):v"
            let fired = try Int.fetchOne(
                db,
                sql: """
                    SELECT MAX(CAST(substr(key, ?) AS INTEGER)) FROM scheduleRuns
                    WHERE scheduleID = ? AND substr(key, 1, ?) = ?
                    """,
                arguments: [prefix.utf8.count + 1, scheduleID, prefix.utf8.count, prefix])
            guard (fired ?? 0) < head.version, let manifest = try Self.fetchDataset(head.cid, db) else { return nil }
            let base: DatasetVersion? =
                if let fired {
                    try Self.datasetVersion(db, "WHERE name = ? AND version = ?", [name, fired])
                } else {
                    try Self.datasetVersion(db, "WHERE name = ? AND time < ? ORDER BY version DESC LIMIT 1", [name, since])
                }
            guard base.map({ $0.version < head.version }) ?? true else { return nil }
            return (head, manifest, base)
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
            guard let (spec, slices) = try Self.partitionSlices(of: job, db) else { return nil }
            guard !slices.isEmpty else {
                throw CodError(
                    .badRequest,
                    spec.fromShard > 0 ? "the partitioned input's dataset has no shard from FromShard \(spec.fromShard) on" : "the partitioned input's dataset has no files")
            }
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
