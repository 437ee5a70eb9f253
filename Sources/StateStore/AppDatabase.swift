import Foundation
public import GRDB
public import Models

/// The orchestrator's durable state in SQLite: jobs, executions, evaluations, history, nodes
/// and the per-node outbox of messages derived from committed changes.
///
/// Every method is one transaction, named for what it does. Records are stored as JSON
/// next to the indexed columns that queries use.
public final class AppDatabase: Sendable {
    public let writer: any DatabaseWriter
    /// Opens (and migrates) a database on any writer: a `DatabasePool` in production, an
    /// in-memory `DatabaseQueue` in tests.
    /// `chargeInterval`: how often a long-running job's executions are charged for the time
    /// they hold their resources, in nanoseconds (`serve --charge-interval`).
    public init(_ writer: any DatabaseWriter, chargeInterval: Int64 = 60_000_000_000) throws {
        self.writer = writer
        try Self.enableIncrementalVacuum(writer)
        try Self.migrator.migrate(writer)
        try writer.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO settings (key, value) VALUES ('chargeInterval', ?)", arguments: [max(chargeInterval, 1_000_000)])
        }
    }

    /// Pages freed by garbage collection can be handed back to the file system (see
    /// ``reclaimSpace()``). In WAL mode the setting takes effect only through a VACUUM: instant
    /// on a new store, done once for a store created before.
    static func enableIncrementalVacuum(_ writer: any DatabaseWriter) throws {
        try writer.writeWithoutTransaction { db in
            guard try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") != 2 else { return }
            try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
            try db.execute(sql: "VACUUM")
        }
    }

    /// Opens the production store at `path` in WAL mode.
    public static func open(path: String, chargeInterval: Int64 = 60_000_000_000) throws -> AppDatabase {
        try AppDatabase(DatabasePool(path: path, configuration: makeConfiguration()), chargeInterval: chargeInterval)
    }

    /// An in-memory store with the same configuration.
    public static func inMemory() throws -> AppDatabase {
        try AppDatabase(DatabaseQueue(configuration: makeConfiguration()))
    }

    public static func makeConfiguration() -> Configuration {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // WAL with FULL sync: every commit is on disk before it returns, so what the
            // orchestrator acknowledges (a submission, a node's report) survives a power loss.
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA synchronous = FULL")
                // A busy store's WAL grows while readers hold old snapshots; after each
                // checkpoint it is cut back to this size instead of keeping its peak.
                try db.execute(sql: "PRAGMA journal_size_limit = 8388608")
            }
        }
        return configuration
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-core") { db in
            try db.execute(sql: """
                CREATE TABLE jobs (
                    id TEXT PRIMARY KEY NOT NULL,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('Undefined','Pending','Queued','Running','Completed','Failed','Stopped')),
                    revision INTEGER NOT NULL,
                    createTime INTEGER NOT NULL,
                    data BLOB NOT NULL
                );
                CREATE INDEX jobs_by_create ON jobs(createTime);
                CREATE INDEX jobs_by_name ON jobs(namespace, name);
                CREATE INDEX jobs_by_state ON jobs(state);
                CREATE TABLE executions (
                    id TEXT PRIMARY KEY NOT NULL,
                    jobID TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                    nodeID TEXT NOT NULL,
                    desiredState INTEGER NOT NULL CHECK (desiredState BETWEEN 0 AND 2),
                    computeState INTEGER NOT NULL CHECK (computeState BETWEEN 0 AND 11),
                    active INTEGER NOT NULL,
                    createTime INTEGER NOT NULL,
                    data BLOB NOT NULL
                );
                CREATE INDEX executions_by_job ON executions(jobID, createTime);
                CREATE INDEX executions_active_by_node ON executions(nodeID) WHERE active = 1;
                CREATE TABLE evaluations (
                    id TEXT PRIMARY KEY NOT NULL,
                    jobID TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                    status TEXT NOT NULL CHECK (status IN ('pending','complete','failed','canceled')),
                    waitUntil INTEGER NOT NULL,
                    createTime INTEGER NOT NULL,
                    data BLOB NOT NULL
                );
                CREATE INDEX evaluations_pending ON evaluations(waitUntil) WHERE status = 'pending';
                CREATE TABLE history (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    jobID TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                    executionID TEXT NOT NULL,
                    data BLOB NOT NULL
                );
                CREATE INDEX history_by_job ON history(jobID, seq);
                CREATE TABLE nodes (
                    id TEXT PRIMARY KEY NOT NULL,
                    data BLOB NOT NULL
                );
                CREATE TABLE nodeStreams (
                    nodeID TEXT PRIMARY KEY NOT NULL,
                    nextOutSeq INTEGER NOT NULL,
                    ackedOutSeq INTEGER NOT NULL,
                    lastInSeq INTEGER NOT NULL,
                    computeSession TEXT NOT NULL
                );
                CREATE TABLE outbox (
                    nodeID TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    PRIMARY KEY (nodeID, seq)
                );
                CREATE TABLE results (
                    executionID TEXT PRIMARY KEY NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
                    size INTEGER NOT NULL,
                    sha256 TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2-allocation-columns") { db in
            // Allocations summed in SQL, so scheduling does not decode every active execution.
            try db.execute(sql: """
                ALTER TABLE executions ADD COLUMN cpu REAL NOT NULL DEFAULT 0;
                ALTER TABLE executions ADD COLUMN memory INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE executions ADD COLUMN disk INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE executions ADD COLUMN gpu INTEGER NOT NULL DEFAULT 0;
                UPDATE executions SET
                    cpu = COALESCE(json_extract(CAST(data AS TEXT), '$.AllocatedResources.CPU'), 0),
                    memory = COALESCE(json_extract(CAST(data AS TEXT), '$.AllocatedResources.Memory'), 0),
                    disk = COALESCE(json_extract(CAST(data AS TEXT), '$.AllocatedResources.Disk'), 0),
                    gpu = COALESCE(json_extract(CAST(data AS TEXT), '$.AllocatedResources.GPU'), 0);
                CREATE INDEX evaluations_pending_by_job ON evaluations(jobID) WHERE status = 'pending';
                """)
        }
        migrator.registerMigration("v3-evaluations-by-job") { db in
            // Deleting a job (garbage collection) cascades to its evaluations: without this
            // index every deletion would scan them all.
            try db.execute(sql: "CREATE INDEX evaluations_by_job ON evaluations(jobID)")
        }
        migrator.registerMigration("v4-datasets") { db in
            // Dataset manifests by root CID (v1), and the merged result of partitioned jobs.
            try db.execute(sql: """
                CREATE TABLE datasets (
                    cid TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL,
                    createTime INTEGER NOT NULL,
                    data BLOB NOT NULL
                );
                CREATE TABLE mergedResults (
                    jobID TEXT PRIMARY KEY NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                    version INTEGER NOT NULL,
                    cid TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v5-users") { db in
            // Users by name; an API key is found by its hash (a key user has one, a password
            // user none).
            try db.execute(sql: """
                CREATE TABLE users (
                    name TEXT PRIMARY KEY NOT NULL,
                    keyHash TEXT UNIQUE,
                    data BLOB NOT NULL
                );
                """)
        }
        migrator.registerMigration("v6-node-keys") { db in
            // The key each node enrolled with, and the last hello refused for its ID.
            try db.execute(sql: """
                CREATE TABLE nodeKeys (
                    nodeID TEXT PRIMARY KEY NOT NULL,
                    publicKey TEXT NOT NULL,
                    enrollTime INTEGER NOT NULL,
                    refusals INTEGER NOT NULL DEFAULT 0,
                    lastRefusal TEXT,
                    refusalTime INTEGER
                );
                """)
        }
        migrator.registerMigration("v7-join-tokens") { db in
            // Join tokens by ID, found at a hello by the SHA-256 of the token presented.
            try db.execute(sql: """
                CREATE TABLE joinTokens (
                    id TEXT PRIMARY KEY NOT NULL,
                    hash TEXT NOT NULL UNIQUE,
                    data BLOB NOT NULL
                );
                """)
        }
        migrator.registerMigration("v8-reputation") { db in
            // Verified work's outcomes per node, engine and artifact (BOINC's host counters).
            try db.execute(sql: """
                CREATE TABLE reputation (
                    nodeID TEXT NOT NULL,
                    engine TEXT NOT NULL,
                    artifact TEXT NOT NULL,
                    consecutiveValid INTEGER NOT NULL,
                    valid INTEGER NOT NULL,
                    invalid INTEGER NOT NULL,
                    errors INTEGER NOT NULL,
                    timeouts INTEGER NOT NULL,
                    PRIMARY KEY (nodeID, engine, artifact)
                );
                """)
        }
        migrator.registerMigration("v9-receipts") { db in
            // Every node's signed receipts as received, by CID: the chain each node signs.
            try db.execute(sql: """
                CREATE TABLE receipts (
                    cid TEXT PRIMARY KEY NOT NULL,
                    nodeID TEXT NOT NULL,
                    executionID TEXT NOT NULL,
                    prev TEXT NOT NULL,
                    received INTEGER NOT NULL
                );
                CREATE INDEX receiptsByNode ON receipts (nodeID, received);
                """)
        }
        migrator.registerMigration("v10-audits") { db in
            // Results accepted unchecked (Adaptive), by node: re-checked when the node is caught
            // returning a wrong result. And where an operator released a quarantined node, the
            // invalid results it was forgiven.
            try db.execute(sql: """
                CREATE TABLE unchecked (
                    executionID TEXT PRIMARY KEY NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
                    nodeID TEXT NOT NULL,
                    jobID TEXT NOT NULL,
                    createTime INTEGER NOT NULL
                );
                CREATE INDEX uncheckedByNode ON unchecked (nodeID, createTime);
                CREATE TABLE quarantineReleases (
                    nodeID TEXT PRIMARY KEY NOT NULL,
                    forgiven INTEGER NOT NULL,
                    time INTEGER NOT NULL,
                    message TEXT NOT NULL
                );
                """)
        }
        registerLedger(&migrator)
        registerHistory(&migrator)
        registerSchedules(&migrator)
        registerDatasetVersions(&migrator)
        registerJobTree(&migrator)
        return migrator
    }

    // MARK: Encoding

    static func encode<T: Encodable>(_ value: T) throws -> Data {
        try JSONEncoder().encode(value)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        try JSONDecoder().decode(T.self, from: data)
    }
}
