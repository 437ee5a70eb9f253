import Foundation
public import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import NodeAPI
public import Logging
import Models
public import NIOCore
public import ServiceLifecycle
import Wire

/// The orchestrator as a set of services: the HTTP/WebSocket server, the evaluation workers,
/// the broker's ticker and the node liveness monitor.
public struct OrchestratorServer: Sendable {
    public let orchestrator: Orchestrator

    public init(config: OrchestratorConfig, logger: Logger) throws {
        self.orchestrator = try Orchestrator(config: config, logger: logger)
    }

    /// Builds the application. `onRunning` receives the bound port (useful with port 0).
    public func makeApplication(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let orchestrator = self.orchestrator
        let config = orchestrator.config
        let router = orchestrator.buildRouter()
        return Application(
            router: router,
            server: HTTPServerBuilder { responder throws -> any ServerChildChannel in
                let channel = HeadDeadlineChannel(
                    HTTP1WebSocketUpgradeChannel(
                        responder: responder,
                        configuration: .init(
                            // A connection that sends nothing more between requests is closed; the
                            // head deadline covers the first request's head.
                            http1: .init(idleTimeout: .seconds(Int64(config.idleTimeoutSeconds))),
                            ws: .init(maxFrameSize: NodeMessage.maxFrameBytes, autoPing: .enabled(timePeriod: .seconds(15))))
                    ) { request, _, _ in
                        guard request.path == "/api/v1/compute/connect" else { return .dontUpgrade }
                        return .upgrade([:]) { inbound, outbound, _ in
                            try await orchestrator.serveNode(inbound: inbound, outbound: outbound)
                        }
                    },
                    timeout: .seconds(Int64(config.idleTimeoutSeconds)))
                // The API and the nodes' WebSocket share the port, so TLS covers both.
                if let tls = config.tls { return try TLSGateChannel(channel, tls: tls) }
                return channel
            },
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "cod"),
            services: [
                EvaluationWorkers(orchestrator: orchestrator), Ticker(orchestrator: orchestrator), ScheduleLoop(orchestrator: orchestrator),
            ],
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? config.port) },
            logger: orchestrator.logger
        )
    }
}

/// Runs evaluations from the broker, `workers` at a time, each job by one worker at a time.
struct EvaluationWorkers: Service {
    let orchestrator: Orchestrator

    func run() async throws {
        try await orchestrator.recover()
        let broker = orchestrator.broker
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for _ in 0..<max(orchestrator.config.workers, 1) {
                    group.addTask {
                        while !Task.isCancelled && !Task.isShuttingDownGracefully {
                            let now = nowNanos()
                            guard let batch = await broker.take(now: now) else {
                                await broker.waitForWork(now: now)
                                continue
                            }
                            // A started plan is finished even during shutdown: it is one transaction.
                            await orchestrator.process(batch)
                            await broker.done(jobID: batch[0].jobID)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            Task { await broker.shutDown() }
        }
    }
}

/// Promotes delayed evaluations when due and checks node liveness.
struct Ticker: Service {
    let orchestrator: Orchestrator

    func run() async throws {
        var lastLiveness = ContinuousClock.now
        var lastPrune = ContinuousClock.now
        var lastCollection = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .milliseconds(100))
            await orchestrator.broker.tick(now: nowNanos())
            if ContinuousClock.now - lastLiveness > .seconds(1), await orchestrator.recovery.done {
                lastLiveness = ContinuousClock.now
                await orchestrator.checkLiveness()
                await orchestrator.chargeLongRunningJobs()
            }
            if ContinuousClock.now - lastPrune > .seconds(10) {
                lastPrune = ContinuousClock.now
                await orchestrator.pruneLiveLogs()
                do {
                    try await orchestrator.database.checkpointIfLarge()
                } catch {
                    orchestrator.logger.warning("checkpoint of the store's log failed: \(error)")
                }
            }
            if ContinuousClock.now - lastCollection > orchestrator.config.retention.interval {
                lastCollection = ContinuousClock.now
                do {
                    try await orchestrator.collectGarbage()
                } catch {
                    orchestrator.logger.error("garbage collection failed: \(error)")
                }
            }
        }
    }
}

/// Fires schedules: wakes at the next tick of any schedule (at least once a second, so new
/// and changed schedules are seen), once the start's recovery is done.
struct ScheduleLoop: Service {
    let orchestrator: Orchestrator

    func run() async throws {
        var lastPrune = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var next: Int64?
            if await orchestrator.recovery.done {
                next = await orchestrator.runDueSchedules()
                await orchestrator.stopOrphans()
                if ContinuousClock.now - lastPrune > .seconds(10) {
                    lastPrune = ContinuousClock.now
                    await orchestrator.pruneScheduleHistory()
                }
            }
            // Until the next tick's second begins, to the nanosecond, or a second at most.
            var wait: Int64 = 1_000_000_000
            if let next {
                let (due, overflow) = next.multipliedReportingOverflow(by: 1_000_000_000)
                if !overflow { wait = min(wait, max(due - nowNanos(), 0)) }
            }
            try? await Task.sleep(for: .nanoseconds(max(wait, 1_000_000)))
        }
    }
}
