import AsyncHTTPClient
import Foundation
import Logging
import Models

/// Finds the engines and GPUs a compute node really has; only those are advertised, so the
/// scheduler never places work on a node that cannot run it.
struct EngineProbe: Sendable {
    let config: ComputeNodeConfig
    let http: HTTPClient
    let nodeID: String
    let pool: RunnerPool
    let logger: Logger

    /// The engines the operator asked for (all three by default).
    var wanted: Set<String> {
        Set((config.engines ?? ["wasm", "docker", "process"]).map { $0.lowercased() })
    }

    /// Probes every wanted engine and the GPUs.
    func probe() async -> (engines: Engines, gpus: [GPUInfo]) {
        var docker: DockerExecutor?
        if wanted.contains("docker") {
            let (executor, note) = await probeDocker()
            docker = executor
            if let executor {
                let removed = await executor.removeOrphans()
                logger.info("docker engine: \(note)\(removed > 0 ? "; removed \(removed) orphaned containers" : "")")
            } else {
                logger.log(level: config.engines != nil ? .warning : .info, "docker engine unavailable: \(note)")
            }
        }
        var sandbox: SandboxExecutor?
        if wanted.contains("process") {
            let (executor, note) = await SandboxExecutor.probe(dataDirectory: config.dataDirectory, pythonIndexURL: config.pythonIndexURL)
            sandbox = executor
            logger.log(level: executor == nil && config.engines != nil ? .warning : .info,
                "process engine\(executor == nil ? " unavailable" : ""): \(note)")
        }
        let (gpus, note) = GPUDetector.detect(command: config.nvidiaSMI)
        logger.info("\(note)")
        return (Engines(wasm: pool, docker: docker, process: sandbox), gpus)
    }

    /// Asks the configured Docker socket (else DOCKER_HOST's, else the default) for a daemon.
    func probeDocker() async -> (DockerExecutor?, String) {
        let socket = config.dockerSocket.map(DockerClient.socketPath(fromHost:)) ?? DockerClient.defaultSocket()
        return await DockerExecutor.probe(
            socket: socket, http: http, nodeID: nodeID, pullPolicy: config.pullPolicy, capabilities: config.containerCapabilities)
    }

    /// While the docker engine is wanted but missing, probes again with a growing interval (2 s
    /// up to a minute); returns the executor once a daemon answers (nil when cancelled).
    func waitForDocker() async -> DockerExecutor? {
        var wait: Duration = .seconds(2)
        while !Task.isCancelled {
            try? await Task.sleep(for: wait)
            wait = min(wait * 2, .seconds(60))
            let (executor, note) = await probeDocker()
            guard let executor, !Task.isCancelled else { continue }
            let removed = await executor.removeOrphans()
            logger.info("docker engine now available: \(note)\(removed > 0 ? "; removed \(removed) orphaned containers" : "")")
            return executor
        }
        return nil
    }
}
