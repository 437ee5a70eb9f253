import Foundation
public import Models
public import NodeAPI
public import Scheduler

/// How the orchestrator runs.
public struct OrchestratorConfig: Sendable {
    public var host: String
    public var port: Int
    /// Folder for the database and stored results.
    public var dataDirectory: URL
    /// Join token compute nodes must present.
    public var token: String
    /// A node silent for this long is lost and its executions rescheduled.
    public var nodeTimeout: Duration
    public var heartbeatInterval: Duration
    public var scheduler: SchedulerSettings
    /// Largest accepted job submission, in bytes (inline inputs travel inside it; large data
    /// belongs in the content store). `serve --max-job-bytes`, default 4 MiB.
    public var maxJobBytes: Int
    /// Largest accepted dataset manifest, in bytes (a million files is about 150 MB).
    public var maxManifestBytes: Int = 256 << 20
    /// Seconds an HTTP connection may stay idle (or sit on half a request head) before it is
    /// closed. `serve --idle-timeout`, default 60.
    public var idleTimeoutSeconds: Int = 60
    /// Largest accepted result bundle from a compute node, in bytes.
    public var maxResultBytes: Int
    /// Number of evaluation workers.
    public var workers: Int
    /// New compute nodes wait as PENDING until an administrator approves them.
    public var manualApproval: Bool
    /// How long and how many ended jobs are kept before garbage collection removes them.
    public var retention: JobRetention
    /// A node whose verified results were found invalid this many times gets no new work
    /// (`serve --quarantine-after N`); 0 never quarantines.
    public var quarantineAfterInvalid = 0
    /// How often long-running jobs are charged for the time their executions hold resources
    /// (`serve --charge-interval`); one whose hold cannot pay the next period is stopped.
    public var chargeInterval: Duration = .seconds(60)
    /// Whether the read-only gateway (`GET|HEAD /ipfs/...`) answers without credentials.
    /// `serve --private-gateway` closes it.
    public var gatewayOpen = true
    /// Whether routes check credentials. Only `cod bench jobs --compare-auth` turns this off,
    /// to measure what checking costs; no command-line flag of a server does.
    public var requireCredentials = true
    /// The certificate the API and the nodes' WebSocket speak TLS with; nil serves plain HTTP.
    /// `serve --tls-cert/--tls-key` or `--tls-self-signed`.
    public var tls: ServerTLS?

    public init(
        host: String = "127.0.0.1", port: Int = 1234, dataDirectory: URL, token: String,
        nodeTimeout: Duration = .seconds(30), heartbeatInterval: Duration = .seconds(5),
        scheduler: SchedulerSettings = SchedulerSettings(), maxJobBytes: Int = 4 << 20, maxResultBytes: Int = 4 << 30,
        workers: Int = 2, manualApproval: Bool = false, retention: JobRetention = JobRetention()
    ) {
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.token = token
        self.nodeTimeout = nodeTimeout
        self.heartbeatInterval = heartbeatInterval
        self.scheduler = scheduler
        self.maxJobBytes = maxJobBytes
        self.maxResultBytes = maxResultBytes
        self.workers = workers
        self.manualApproval = manualApproval
        self.retention = retention
    }

    var resultsDirectory: URL { dataDirectory.appendingPathComponent("results") }
    var databasePath: String { dataDirectory.appendingPathComponent("state.sqlite").path }
    /// Where the first administrator's API key is written (0600) when the store has no user.
    public var adminKeyFile: URL { dataDirectory.appendingPathComponent("admin.key") }
}

/// Wall-clock time in Unix nanoseconds; read only in shells, passed into the core.
func nowNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// Garbage collection of ended jobs: those older than `maxAge`, and all but the newest
/// `keepJobs`, go with their executions, history, result bundles and result pins. Jobs that
/// have not ended are never removed.
public struct JobRetention: Sendable {
    /// Ended jobs created longer ago than this are removed; nil keeps them whatever their age.
    public var maxAge: Duration?
    /// At most this many ended jobs are kept (the newest); nil keeps any number.
    public var keepJobs: Int?
    /// How often the collection runs.
    public var interval: Duration

    public init(maxAge: Duration? = .seconds(7 * 24 * 3600), keepJobs: Int? = 50_000, interval: Duration = .seconds(60)) {
        self.maxAge = maxAge
        self.keepJobs = keepJobs
        self.interval = interval
    }
}
