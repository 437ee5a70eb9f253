import APIClient
import ArgumentParser
import CodServers
import ComputeNode
import Foundation
import Hummingbird
import Logging
import Models
import NodeAPI
import OrchestratorServer
import SafeFS
import ServiceLifecycle

/// Where a server keeps its state; `~/.cod` unless told otherwise.
func defaultDataDirectory() -> URL {
    if let explicit = ProcessInfo.processInfo.environment["COD_DIR"] { return URL(fileURLWithPath: explicit) }
    return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cod")
}

/// Reads the join token from `<dir>/token`, creating a random one (0600 from creation) on
/// first start.
func loadOrCreateToken(in directory: URL) throws -> String {
    try SecretFile.readOrCreate(at: joinTokenFile(in: directory)) {
        var rng = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(rng.next(), radix: 16) }.joined()
    }
}

/// Where an orchestrator keeps the join token it made.
func joinTokenFile(in directory: URL) -> URL { directory.appendingPathComponent("token") }

func parseLabels(_ labels: [String]) throws -> [String: String] {
    var result: [String: String] = [:]
    for item in labels.flatMap({ $0.split(separator: ",") }) {
        let parts = item.split(separator: "=", maxSplits: 1)
        guard parts.count == 2 else { throw ValidationError("labels are KEY=VALUE, got \(item)") }
        result[String(parts[0])] = String(parts[1])
    }
    return result
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an orchestrator, a compute node, or both.",
        discussion: """
            cod serve --orchestrator                      # API on :1234; the log says where the join token is
            cod serve --compute --orchestrators http://HOST:1234 --token-file TOKEN_FILE
            cod serve --orchestrator --compute            # both in one process
            cod serve --orchestrator --tls-self-signed    # HTTPS; the log shows the certificate's fingerprint
            cod serve --compute --orchestrators https://HOST:1234 --tls-fingerprint SHA256:... --token-file TOKEN_FILE
            """)

    @Flag(help: "Run the orchestrator (API, scheduler, store).") var orchestrator = false
    @Flag(help: "Run a compute node.") var compute = false
    @Option(help: "Orchestrator URL for a compute node.") var orchestrators: String?
    @Option(help: "Address the API (and a compute node's own API) listens on; 127.0.0.1 unless told otherwise: serving other machines takes an explicit --host (0.0.0.0, or one address).") var host = "127.0.0.1"
    @Option(help: "Port the API listens on.") var port = 1234
    @Option(name: .customLong("data-dir"), help: "Where state is kept (default ~/.cod or COD_DIR).") var dataDirectory: String?
    @Option(help: "Join token (env COD_TOKEN); the orchestrator creates one when not given.") var token: String?
    @Option(name: .customLong("token-file"), help: "Read the join token from this file instead (keeps it out of the process list).")
    var tokenFile: String?
    @Option(help: "Compute node labels KEY=VALUE (repeatable or comma-separated).") var labels: [String] = []
    @Option(name: .customLong("compute-port"), help: "Port of the compute node's own API (gateway, data); 0 for any free port.") var computePort = 1235
    @Option(name: .customLong("ipfs-gateway"), help: "Trustless IPFS gateway to fetch inputs from when no Cod node has them (repeatable).") var ipfsGateways: [String] = []
    @Option(name: .customLong("node-timeout"), help: "Seconds without heartbeat before a node is lost.") var nodeTimeout = 30
    @Option(name: .customLong("heartbeat-interval"), help: "Seconds between compute nodes' heartbeats (the orchestrator tells them); three missed make a node suspect.")
    var heartbeatInterval = 5.0
    @Option(name: .customLong("node-approval"), help: "auto (default): nodes with the token may work; manual: they wait for cod node approve.")
    var nodeApproval = "auto"
    @Option(name: .customLong("max-job-bytes"), help: "Largest job submission accepted, in bytes (inline inputs included; default 4 MiB).")
    var maxJobBytes = 4 << 20
    @Option(name: .customLong("quarantine-after"), help: "Give no new work to a node once this many of its results were found invalid since it was last released (cod node release; 0: never).")
    var quarantineAfter = 0
    @Flag(name: .customLong("private-gateway"), help: "The read-only gateway (GET /ipfs/...) needs read:data too (peers then cannot fetch inputs from it).")
    var privateGateway = false
    @Option(name: .customLong("tls-cert"), help: "Serve the API and the nodes' WebSocket over TLS with this PEM certificate chain (leaf first); needs --tls-key.")
    var tlsCertificate: String?
    @Option(name: .customLong("tls-key"), help: "The PEM private key of --tls-cert.") var tlsKey: String?
    @Flag(name: .customLong("tls-self-signed"), help: "Serve over TLS with a self-signed certificate kept in the data folder (made on first start); the log shows its SHA-256 fingerprint.")
    var tlsSelfSigned = false
    @OptionGroup var trust: TrustOptions
    @OptionGroup var connectionOptions: ConnectionOptions
    @OptionGroup var retentionOptions: RetentionOptions
    @OptionGroup var ledgerOptions: LedgerOptions
    @OptionGroup var engineOptions: EngineOptions
    @Option(name: .customLong("log-level"), help: "trace, debug, info, warning, error.") var logLevel = "info"

    func validate() throws {
        if (tlsCertificate == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        if tlsSelfSigned && tlsCertificate != nil { throw ValidationError("choose --tls-self-signed or --tls-cert/--tls-key, not both") }
        if (tlsSelfSigned || tlsCertificate != nil) && !orchestrator {
            throw ValidationError("--tls-cert, --tls-key and --tls-self-signed are for the orchestrator's API (--orchestrator)")
        }
        if !orchestrator && !compute { throw ValidationError("choose --orchestrator, --compute or both") }
        if !["auto", "manual"].contains(nodeApproval) { throw ValidationError("--node-approval is auto or manual") }
        if !(1024...(256 << 20)).contains(maxJobBytes) { throw ValidationError("--max-job-bytes must be between 1024 and 268435456") }
        if !(heartbeatInterval >= 0.1 && heartbeatInterval < Double(nodeTimeout)) {
            throw ValidationError("--heartbeat-interval must be at least 0.1 seconds and shorter than --node-timeout (\(nodeTimeout))")
        }
        if compute && !orchestrator && orchestrators == nil {
            throw ValidationError("a compute node needs --orchestrators http://HOST:PORT")
        }
    }

    func run() async throws {
        let logger = LogSetup.bootstrap(level: logLevel)
        let base = dataDirectory.map { URL(fileURLWithPath: $0) } ?? defaultDataDirectory()
        var services: [any Service] = []
        var joinToken = try tokenFile.map { try SecretFile.read(URL(fileURLWithPath: $0)) } ?? token ?? ProcessInfo.processInfo.environment["COD_TOKEN"]
        // Where the token can be read, for the log: never the token itself.
        var tokenSource = tokenFile.map { "the token in \($0)" } ?? "the token it was started with"
        var ownFingerprint: String?
        if orchestrator {
            let orchestratorDir = base.appendingPathComponent("orchestrator")
            if joinToken == nil {
                joinToken = try loadOrCreateToken(in: orchestratorDir)
                tokenSource = "--token-file \(joinTokenFile(in: orchestratorDir).path)"
            }
            var config = OrchestratorConfig(
                host: host, port: port, dataDirectory: orchestratorDir, token: joinToken!, nodeTimeout: .seconds(nodeTimeout),
                heartbeatInterval: .milliseconds(Int64(heartbeatInterval * 1000)), maxJobBytes: maxJobBytes,
                manualApproval: nodeApproval == "manual", retention: try retentionOptions.retention())
            config.idleTimeoutSeconds = connectionOptions.idleTimeout
            config.gatewayOpen = !privateGateway
            config.quarantineAfterInvalid = max(quarantineAfter, 0)
            config.chargeInterval = try ledgerOptions.interval()
            config.tls = try serverTLS(orchestratorDir: orchestratorDir)
            if let tls = config.tls {
                ownFingerprint = tls.fingerprint
                logger.info("the API speaks TLS; its certificate's fingerprint is \(tls.fingerprint)")
            }
            let server = try OrchestratorServer(config: config, logger: logger)
            let scheme = config.tls == nil ? "http" : "https"
            services.append(server.makeApplication { [host, tokenSource] port in
                logger.info("orchestrator listening on \(scheme)://\(host):\(port); compute nodes join with \(tokenSource)")
            })
        }
        if compute {
            guard let joinToken else { throw ValidationError("a compute node needs --token-file, --token or COD_TOKEN") }
            // A node in the orchestrator's own process trusts that orchestrator's certificate.
            let url = orchestrators ?? "\(ownFingerprint == nil ? "http" : "https")://127.0.0.1:\(port)"
            var config = ComputeNodeConfig(
                orchestratorURL: url, token: joinToken, dataDirectory: base.appendingPathComponent("compute"),
                labels: try parseLabels(labels))
            config.orchestratorTLS = try trust.policy()
                ?? ClientTLS.from(authorityFile: nil, fingerprint: orchestrators == nil ? ownFingerprint : nil)
            var computeConfig = config
            computeConfig.apiHost = host
            computeConfig.apiPort = computePort
            computeConfig.ipfsGateways = ipfsGateways
            engineOptions.apply(to: &computeConfig)
            let agent = try ComputeAgent(config: computeConfig, logger: logger)
            services.append(agent)
            if let server = agent.makeAPIServer() { services.append(server) }
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// The certificate the orchestrator serves with, from --tls-cert/--tls-key or the
    /// self-signed one in `<data>/orchestrator/tls`; nil for plain HTTP.
    func serverTLS(orchestratorDir: URL) throws -> ServerTLS? {
        do {
            if let tlsCertificate, let tlsKey { return try ServerTLS(certificateFile: tlsCertificate, keyFile: tlsKey) }
            guard tlsSelfSigned else { return nil }
            return try ServerTLS.selfSigned(
                in: orchestratorDir.appendingPathComponent("tls"), hosts: ServerTLS.certificateHosts(listeningOn: host))
        } catch let error as ServerTLS.Failure {
            throw ValidationError(error.description)
        }
    }
}

struct Devstack: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an orchestrator and compute nodes in one process, over the real transport on loopback.")

    @Option(help: "Number of compute nodes.") var computes = 3
    @Option(name: .customLong("data-dir"), help: "Where state is kept; reuse it to restart the same cluster.") var dataDirectory: String?
    @Option(help: "API port.") var port = 1234
    @Option(name: .customLong("node-timeout"), help: "Seconds without heartbeat before a node is lost.") var nodeTimeout = 10
    @OptionGroup var engineOptions: EngineOptions
    @Option(name: .customLong("ipfs-gateway"), help: "Trustless IPFS gateway the compute nodes fetch inputs from when no Cod node has them (repeatable).") var ipfsGateways: [String] = []
    @Option(name: .customLong("log-level"), help: "trace, debug, info, warning, error.") var logLevel = "warning"
    @Flag(help: "Serve the API over TLS with a self-signed certificate (the nodes and the printed exports pin its fingerprint).")
    var tls = false
    @Option(name: .customLong("bad-nodes"), help: "Make the last N compute nodes dishonest: they alter the outputs they publish (to see verification catch them).")
    var badNodes = 0
    @Option(name: .customLong("bad-mode"), help: "How bad nodes lie: corrupt (one byte of an output), empty (no outputs) or random.")
    var badMode = "corrupt"
    @Option(name: .customLong("bad-after"), help: "Bad nodes run their first N executions honestly (to earn a reputation) before they lie.")
    var badAfter = 0
    @Option(name: .customLong("quarantine-after"), help: "Give no new work to a node once this many of its results were found invalid since it was last released (cod node release; 0: never).")
    var quarantineAfter = 0
    @OptionGroup var connectionOptions: ConnectionOptions
    @OptionGroup var retentionOptions: RetentionOptions
    @OptionGroup var ledgerOptions: LedgerOptions

    func validate() throws {
        guard (0...64).contains(computes) else { throw ValidationError("--computes must be between 0 and 64") }
        guard (0...computes).contains(badNodes) else { throw ValidationError("--bad-nodes must be between 0 and --computes (\(computes))") }
        guard badAfter >= 0 else { throw ValidationError("--bad-after must be 0 or more executions, got \(badAfter)") }
        guard Misbehaviour(rawValue: badMode) != nil else {
            throw ValidationError("--bad-mode must be \(Misbehaviour.allCases.map(\.rawValue).joined(separator: ", ")), got \(badMode)")
        }
    }

    func run() async throws {
        let logger = LogSetup.bootstrap(level: logLevel)
        let base = dataDirectory.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("cod-devstack-\(UUID().uuidString.prefix(8))")
        let token = try loadOrCreateToken(in: base)
        let bound = PortSignal()
        let stack = try DevstackServices(
            base: base, token: token, port: port, computes: computes, nodeTimeout: .seconds(nodeTimeout),
            ipfsGateways: ipfsGateways, engineOptions: engineOptions, retention: try retentionOptions.retention(),
            idleTimeoutSeconds: connectionOptions.idleTimeout, tls: tls, badNodes: badNodes, badMode: Misbehaviour(rawValue: badMode) ?? .corrupt,
            badAfter: badAfter,
            quarantineAfterInvalid: max(quarantineAfter, 0), chargeInterval: try ledgerOptions.interval(),
            logger: logger
        ) { [tls, badNodes, badMode, badAfter, computes] port, key, fingerprint in
            // The admin key is saved for this address too, so the CLI on this machine works
            // with no setup; it is removed again when the devstack stops.
            try? CredentialStore.standard.save(.apiKey(key), for: "\(tls ? "https" : "http")://127.0.0.1:\(port)")
            await bound.set(port)
            let tlsExport = fingerprint.map { "\nexport COD_TLS_FINGERPRINT=\($0)" } ?? ""
            let badWarning = badNodes == 0
                ? "" : "\nWarning: the last \(badNodes) (devstack-index \(computes - badNodes) and up) are bad nodes: they publish \(badMode) outputs"
                    + (badAfter > 0 ? " after their first \(badAfter) executions." : ".")
            FileHandle.standardOutput.write(Data("""
                Devstack is ready: 1 orchestrator and \(computes) compute node\(computes == 1 ? "" : "s").\(badWarning)
                Data folder: \(base.path)

                To use it from another terminal:
                export COD_API_HOST=127.0.0.1
                export COD_API_PORT=\(port)
                export COD_API_KEY=\(key)\(tlsExport)

                Try: cod wasm run MODULE.wasm
                Press Ctrl+C to stop.

                """.utf8))
        }
        let group = ServiceGroup(
            configuration: .init(services: stack.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        var failure: (any Error)?
        do { try await group.run() } catch { failure = error }
        if let port = await bound.value {
            CredentialStore.standard.remove(for: "\(tls ? "https" : "http")://127.0.0.1:\(port)", onlyIf: .apiKey(stack.adminKey))
        }
        if let failure { throw failure }
    }
}

/// How long an HTTP connection may sit idle or half-sent (serve and devstack).
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("idle-timeout"), help: "Seconds an idle or half-sent HTTP connection stays open (default 60).")
    var idleTimeout = 60

    func validate() throws {
        guard (1...86_400).contains(idleTimeout) else { throw ValidationError("--idle-timeout must be between 1 and 86400 seconds") }
    }
}

/// How the orchestrator charges (serve and devstack).
struct LedgerOptions: ParsableArguments {
    @Option(name: .customLong("charge-interval"), help: "Seconds between charges of long-running jobs (services, daemons) for the time their executions hold resources; a job whose hold cannot pay the next is stopped.")
    var chargeInterval = 60.0

    func interval() throws -> Duration {
        guard chargeInterval >= 0.1, chargeInterval <= 86_400 else {
            throw ValidationError("--charge-interval must be from 0.1 to 86400 seconds, got \(chargeInterval)")
        }
        return .milliseconds(Int64(chargeInterval * 1000))
    }
}

/// How long ended jobs are kept (serve and devstack).
struct RetentionOptions: ParsableArguments {
    @Option(name: .customLong("job-retention"), help: "Remove ended jobs older than this (e.g. 7d, 24h, 90m); 0 keeps them whatever their age.")
    var jobRetention = "7d"
    @Option(name: .customLong("keep-jobs"), help: "Keep at most this many ended jobs, the newest; 0 keeps any number.")
    var keepJobs = 50_000
    @Option(name: .customLong("gc-interval"), help: "Seconds between garbage collections of ended jobs (cod job gc runs one now).")
    var gcInterval = 60

    func validate() throws {
        _ = try retention()
    }

    func retention() throws -> JobRetention {
        guard let seconds = ResourceParsing.seconds(jobRetention) else {
            throw ValidationError("--job-retention \(jobRetention) is not a duration; write e.g. 7d, 24h, 90m or 0")
        }
        guard keepJobs >= 0 else { throw ValidationError("--keep-jobs must be 0 (no limit) or more") }
        guard gcInterval >= 1 else { throw ValidationError("--gc-interval must be at least 1 second") }
        return JobRetention(
            maxAge: seconds == 0 ? nil : .seconds(seconds), keepJobs: keepJobs == 0 ? nil : keepJobs, interval: .seconds(gcInterval))
    }
}
