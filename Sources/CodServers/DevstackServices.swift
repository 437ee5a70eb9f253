import APIClient
import ComputeNode
import Foundation
import NodeAPI
public import Logging
public import Models
import OrchestratorServer
import SafeFS
public import ServiceLifecycle

/// The services of a devstack: one orchestrator and N compute agents that dial it once it
/// listens. Used by `cod devstack` and `cod bench`.
public struct DevstackServices {
    public let services: [any Service]
    /// The API key of the devstack's admin user (`<base>/orchestrator/admin.key`).
    public let adminKey: String
    /// The fingerprint of the self-signed certificate the API serves, with `tls`.
    public let fingerprint: String?

    public init(
        base: URL, token: String, port: Int, computes: Int, nodeTimeout: Duration, ipfsGateways: [String] = [],
        engineOptions: EngineOptions? = nil, retention: JobRetention = JobRetention(), idleTimeoutSeconds: Int = 60,
        requireCredentials: Bool = true, tls: Bool = false, badNodes: Int = 0, badMode: Misbehaviour = .corrupt, badAfter: Int = 0,
        quarantineAfterInvalid: Int = 0, chargeInterval: Duration = .seconds(60), logger: Logger,
        onReady: @escaping @Sendable (_ port: Int, _ adminKey: String, _ fingerprint: String?) async -> Void
    ) throws {
        var config = OrchestratorConfig(
            host: "127.0.0.1", port: port, dataDirectory: base.appendingPathComponent("orchestrator"), token: token,
            nodeTimeout: nodeTimeout, heartbeatInterval: .seconds(2), retention: retention)
        config.idleTimeoutSeconds = idleTimeoutSeconds
        config.requireCredentials = requireCredentials
        config.quarantineAfterInvalid = quarantineAfterInvalid
        config.chargeInterval = chargeInterval
        if tls {
            config.tls = try ServerTLS.selfSigned(in: config.dataDirectory.appendingPathComponent("tls"), hosts: ["127.0.0.1"])
        }
        let fingerprint = config.tls?.fingerprint
        self.fingerprint = fingerprint
        let server = try OrchestratorServer(config: config, logger: logger)
        do {
            adminKey = try SecretFile.read(config.adminKeyFile)
        } catch {
            throw SecretFile.Failure(
                description: "\(error); the devstack in \(base.path) has users but no admin key file: start one with a new --data-dir")
        }
        let ready = PortSignal()
        var services: [any Service] = []
        let adminKey = self.adminKey
        services.append(server.makeApplication { bound in
            await ready.set(bound)
            await onReady(bound, adminKey, fingerprint)
        })
        // A node offers an equal share of the machine, so N nodes together match it.
        let total = ComputeNodeConfig.defaultCapacity()
        let share = Resources(
            cpu: max(total.cpu / Double(max(computes, 1)), 0.5), memory: total.memory / UInt64(max(computes, 1)), disk: total.disk)
        for index in 0..<computes {
            let directory = base.appendingPathComponent("compute-\(index)")
            services.append(DeferredCompute(ready: ready, make: { port in
                var config = ComputeNodeConfig(
                    orchestratorURL: "\(fingerprint == nil ? "http" : "https")://127.0.0.1:\(port)", token: token, dataDirectory: directory,
                    labels: ["devstack-index": String(index)], capacity: share, heartbeatInterval: .seconds(2),
                    apiPort: 0, ipfsGateways: ipfsGateways)
                // The nodes pin the devstack's own certificate.
                config.orchestratorTLS = try ClientTLS.from(authorityFile: nil, fingerprint: fingerprint)
                // The last `badNodes` nodes lie about their outputs (verification demos).
                if index >= computes - badNodes {
                    config.misbehaviour = badMode
                    config.misbehaviourAfter = badAfter
                }
                engineOptions?.apply(to: &config)
                return try ComputeAgent(config: config, logger: logger)
            }))
        }
        self.services = services
    }
}

/// Resolves once the orchestrator has bound its port.
public actor PortSignal {
    public init() {}

    private var port: Int?
    private var waiters: [CheckedContinuation<Int, Never>] = []

    public func set(_ value: Int) {
        port = value
        for waiter in waiters { waiter.resume(returning: value) }
        waiters.removeAll()
    }

    /// The port, once set.
    public var value: Int? { port }

    public func wait() async -> Int {
        if let port { return port }
        return await withCheckedContinuation { waiters.append($0) }
    }
}

/// A compute agent that starts once the orchestrator in the same process is listening.
struct DeferredCompute: Service {
    let ready: PortSignal
    let make: @Sendable (Int) throws -> ComputeAgent

    func run() async throws {
        let port = try await cancelWhenGracefulShutdown { await ready.wait() }
        let agent = try make(port)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await agent.run() }
            if let server = agent.makeAPIServer() { group.addTask { try await server.run() } }
            try await group.waitForAll()
        }
    }
}

