import APIClient
import Foundation
import Models

/// A cluster that did not come up, with where its logs are.
public struct ClusterError: Error, CustomStringConvertible {
    public var description: String
}

/// Child `cod` processes with their output in log files; all are stopped at the end.
public final class ChildProcesses: @unchecked Sendable {
    public let executable: URL
    public let logs: URL
    private let lock = NSLock()
    private var processes: [Process] = []

    public init(executable: URL, logs: URL) {
        self.executable = executable
        self.logs = logs
    }

    public func start(_ name: String, _ arguments: [String]) throws -> Process {
        let log = logs.appendingPathComponent("\(name).log")
        if !FileManager.default.fileExists(atPath: log.path) { FileManager.default.createFile(atPath: log.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        lock.withLock { processes.append(process) }
        return process
    }

    /// `cod serve --orchestrator` on 127.0.0.1:`port` with its data in `data`.
    public func orchestrator(port: Int, data: URL, token: String, _ extra: [String] = []) throws -> Process {
        try start(
            "orchestrator",
            ["serve", "--orchestrator", "--host", "127.0.0.1", "--port", String(port), "--data-dir", data.path, "--token", token,
             "--log-level", "error"] + extra)
    }

    /// The admin API key of the orchestrator whose `--data-dir` is `data`, once it has written
    /// it (up to 30 s).
    public func adminKey(data: URL) async throws -> String {
        let file = data.appendingPathComponent("orchestrator").appendingPathComponent("admin.key")
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let text = try? String(contentsOf: file, encoding: .utf8), !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                return text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard ContinuousClock.now < deadline else { throw ClusterError(description: "no admin key appeared in \(file.path); logs in \(logs.path)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Compute process `index`, joining the orchestrator on `port`, with its data in `data`.
    public func compute(_ index: Int, port: Int, data: URL, token: String, engines: String, _ extra: [String] = []) throws -> Process {
        try start(
            "compute\(index)",
            ["serve", "--compute", "--compute-port", "0", "--orchestrators", "http://127.0.0.1:\(port)", "--token", token,
             "--engines", engines, "--data-dir", data.path, "--log-level", "error"] + extra)
    }

    /// Waits (up to 60 s) until `count` compute nodes are connected.
    public func waitForComputes(_ count: Int, client: CodClient, orchestrator: Process) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while (try? await client.nodes().filter { $0.connection == .connected }.count) ?? 0 < count {
            guard ContinuousClock.now < deadline, orchestrator.isRunning else {
                throw ClusterError(description: "the cluster did not start; logs in \(logs.path)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    public func stopAll() {
        let all = lock.withLock { processes }
        for process in all where process.isRunning { process.interrupt() }
        let deadline = Date().addingTimeInterval(10)
        for process in all {
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }
}
