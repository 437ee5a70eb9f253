import APIClient
import Foundation

/// Locations of the package, the built `cod` binary and the WASM fixtures.
enum Paths {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `cod` executable built next to the tests (`swift build` builds it).
    static var cod: URL {
        get throws {
            let candidates = [".build/debug/cod", ".build/x86_64-unknown-linux-gnu/debug/cod", ".build/aarch64-unknown-linux-gnu/debug/cod"]
            for candidate in candidates {
                let url = packageRoot.appendingPathComponent(candidate)
                if FileManager.default.isExecutableFile(atPath: url.path) { return url }
            }
            throw TestFailure("the cod binary is not built; run `swift build` before `swift test --skip-build`")
        }
    }

    /// Builds the C fixtures into WASM once per test run (needs clang, lld and wasi-libc).
    static func fixtures() throws -> URL {
        try FixtureBuild.shared.directory()
    }

    static func fixture(_ name: String) throws -> String {
        try fixtures().appendingPathComponent(name + ".wasm").path
    }

    static func temporaryDirectory(_ prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

final class FixtureBuild: @unchecked Sendable {
    static let shared = FixtureBuild()
    private let lock = NSLock()
    private var built: URL?

    func directory() throws -> URL {
        try lock.withLock {
            if let built { return built }
            let output = Paths.packageRoot.appendingPathComponent(".build/wasm-fixtures")
            let script = Paths.packageRoot.appendingPathComponent("Tests/Fixtures/wasm/build.sh")
            let result = try Run.sync([script.path, output.path])
            guard result.status == 0 else {
                throw TestFailure("building WASM fixtures failed (install clang, lld and wasi-libc):\n\(result.stderr)")
            }
            built = output
            return output
        }
    }
}

/// The outcome of a finished command.
struct CommandResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs commands with their output captured in files (no pipe can fill up and block).
enum Run {
    static func sync(_ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
        let (process, out, err) = try prepare(arguments, environment: environment)
        try process.run()
        process.waitUntilExit()
        return collect(process, out, err)
    }

    static func async(_ arguments: [String], environment: [String: String] = [:], directory: URL? = nil) async throws -> CommandResult {
        let (process, out, err) = try prepare(arguments, environment: environment)
        if let directory { process.currentDirectoryURL = directory }
        return try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { process in continuation.resume(returning: collect(process, out, err)) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
    }

    static func prepare(_ arguments: [String], environment: [String: String]) throws -> (Process, URL, URL) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.environment = Isolation.environment.merging(environment) { _, new in new }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("cod-out-\(UUID().uuidString)")
        let err = FileManager.default.temporaryDirectory.appendingPathComponent("cod-err-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        return (process, out, err)
    }

    static func collect(_ process: Process, _ out: URL, _ err: URL) -> CommandResult {
        let stdout = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: out)
        try? FileManager.default.removeItem(at: err)
        return CommandResult(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }
}

/// The environment child processes get: this one's, with the CLI's saved credentials in a
/// folder of the test run's own, so tests neither read nor write the user's.
enum Isolation {
    static let configDirectory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cod-test-config-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    static var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["COD_CONFIG_DIR"] = configDirectory.path
        environment["COD_API_KEY"] = nil
        environment["BACALHAU_API_KEY"] = nil
        return environment
    }
}

/// A `cod devstack` running as its own OS process.
final class DevstackProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    let dataDirectory: URL
    let log: URL
    /// The admin's API key, from the devstack's `export COD_API_KEY=` line.
    let apiKey: String

    private init(process: Process, port: Int, dataDirectory: URL, log: URL, apiKey: String) {
        self.process = process
        self.port = port
        self.dataDirectory = dataDirectory
        self.log = log
        self.apiKey = apiKey
    }

    /// Starts a devstack on a free port and waits until `computes` nodes have joined.
    static func start(dataDirectory: URL, computes: Int = 3, extraArguments: [String] = []) async throws -> DevstackProcess {
        let cod = try Paths.cod
        let stamp = UUID().uuidString.prefix(6)
        let log = dataDirectory.deletingLastPathComponent().appendingPathComponent("\(dataDirectory.lastPathComponent)-\(stamp).log")
        let banner = dataDirectory.deletingLastPathComponent().appendingPathComponent("\(dataDirectory.lastPathComponent)-\(stamp).out")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        FileManager.default.createFile(atPath: banner.path, contents: nil)
        let process = Process()
        process.executableURL = cod
        process.arguments = ["devstack", "--port", "0", "--computes", String(computes), "--data-dir", dataDirectory.path,
                             "--node-timeout", "5", "--log-level", "info"] + extraArguments
        process.standardOutput = try FileHandle(forWritingTo: banner)
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardInput = FileHandle.nullDevice
        process.environment = Isolation.environment
        try process.run()
        Registry.shared.add(process)
        let deadline = Date().addingTimeInterval(60)
        var port: Int?
        var key: String?
        while port == nil || key == nil {
            guard Date() < deadline, process.isRunning else {
                throw TestFailure("devstack did not start:\n\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
            }
            try await Task.sleep(for: .milliseconds(50))
            let lines = ((try? String(contentsOf: banner, encoding: .utf8)) ?? "").split(separator: "\n")
            func exported(_ name: String) -> String? {
                lines.first { $0.hasPrefix("export \(name)=") }.map { String($0.dropFirst("export \(name)=".count)) }
            }
            port = exported("COD_API_PORT").flatMap { Int($0) }
            key = exported("COD_API_KEY")
        }
        let stack = DevstackProcess(process: process, port: port!, dataDirectory: dataDirectory, log: log, apiKey: key!)
        try await stack.waitForNodes(computes)
        return stack
    }

    func waitForNodes(_ count: Int) async throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let result = try await cod("node", "list", "--output", "json")
            if result.status == 0, result.stdout.components(separatedBy: "\"Connection\" : \"CONNECTED\"").count - 1 >= count { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("compute nodes did not join:\n\(logText)")
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// What the CLI needs to talk to this devstack as its admin.
    var environment: [String: String] {
        ["COD_API_HOST": "127.0.0.1", "COD_API_PORT": String(port), "COD_API_KEY": apiKey]
    }

    /// A client for this devstack's API as its admin.
    var client: CodClient { CodClient(baseURL: "127.0.0.1:\(port)", token: apiKey) }

    /// The data folder of the devstack's compute node `nodeID` (`<data>/compute-N`).
    func computeDirectory(nodeID: String) throws -> URL {
        let folders = (try? FileManager.default.contentsOfDirectory(at: dataDirectory, includingPropertiesForKeys: nil)) ?? []
        for folder in folders where folder.lastPathComponent.hasPrefix("compute-") {
            let id = try? String(contentsOf: folder.appendingPathComponent("node-id"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            if id == nodeID { return folder }
        }
        throw TestFailure("no compute folder in \(dataDirectory.path) belongs to node \(nodeID)")
    }

    /// The own API key of the devstack's compute node `nodeID`, as its operator has it.
    func nodeAPIKey(nodeID: String) throws -> String {
        try String(contentsOf: computeDirectory(nodeID: nodeID).appendingPathComponent("api.key"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs the CLI against this devstack.
    func cod(_ arguments: String...) async throws -> CommandResult {
        try await cod(arguments)
    }

    func cod(_ arguments: [String], in directory: URL? = nil) async throws -> CommandResult {
        try await Run.async(
            [try Paths.cod.path] + arguments, environment: environment,
            directory: directory)
    }

    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() {
        guard process.isRunning else { return }
        process.interrupt()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill9() }
    }
}

/// Devstacks still running when the test process exits are killed.
final class Registry: @unchecked Sendable {
    static let shared = Registry()
    private let lock = NSLock()
    private var processes: [Process] = []

    init() {
        atexit {
            for process in Registry.shared.all where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    func add(_ process: Process) { lock.withLock { processes.append(process) } }
    var all: [Process] { lock.withLock { processes } }
}

/// One devstack shared by the tests of a suite.
actor SharedDevstack {
    static let shared = SharedDevstack()
    private var stack: DevstackProcess?

    func get() async throws -> DevstackProcess {
        if let stack, stack.process.isRunning { return stack }
        let started = try await DevstackProcess.start(dataDirectory: try Paths.temporaryDirectory("cod-it"))
        stack = started
        return started
    }
}
