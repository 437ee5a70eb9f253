import APIClient
@testable import CodTestKit
import Foundation
import Models
import Testing
import Wire

/// Decodes `cod job describe --output json`.
func describe(_ stack: DevstackProcess, _ id: String) async throws -> GetJobResponse {
    let result = try await stack.cod("job", "describe", id, "--output", "json")
    guard result.status == 0 else { throw TestFailure("describe failed: \(result.stderr)") }
    return try JSONDecoder().decode(GetJobResponse.self, from: Data(result.stdout.utf8))
}

/// Submits with --id-only and returns the job ID (the job has ended when it returns).
func runJob(_ stack: DevstackProcess, _ arguments: [String]) async throws -> (id: String, result: CommandResult) {
    let result = try await stack.cod(arguments + ["--id-only"])
    let id = result.stdout.split(separator: "\n").first.map(String.init) ?? ""
    return (id, result)
}

@Suite("End to end on a devstack (separate processes)", .serialized)
struct DevstackEndToEndTests {
    @Test func argvEnvironmentAndExitCode() async throws {
        let stack = try await SharedDevstack.shared.get()
        let result = try await stack.cod(
            "wasm", "run", try Paths.fixture("echo_env"), "first", "second arg", "-e", "GREETING=hello", "-e", "EXIT_CODE=7")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("argv[0]=echo_env.wasm"))
        #expect(result.stdout.contains("argv[1]=first"))
        #expect(result.stdout.contains("argv[2]=second arg"))
        #expect(result.stdout.contains("GREETING=hello"))
        #expect(result.stdout.contains("BACALHAU_PARTITION_INDEX=0"))
        #expect(result.stdout.contains("BACALHAU_PARTITION_COUNT=1"))
        #expect(result.stdout.contains("BACALHAU_JOB_ID=j-"))
        #expect(result.stdout.contains("BACALHAU_EXECUTION_ID=e-"))
        #expect(result.stdout.contains("(exit code 7)"))
        // A non-zero exit is a completed execution with that code, in `job get`'s layout too.
        let id = try #require(result.stdout.split(separator: " ").first { $0.hasPrefix("j-") }.map { String($0.prefix(38)) })
        let job = try await describe(stack, id)
        #expect(job.job.state.stateType == .completed)
        #expect(job.executions?.items.first?.runOutput?.exitCode == 7)
        let output = try Paths.temporaryDirectory("cod-get")
        let get = try await stack.cod("job", "get", String(id.prefix(10)), "--output-dir", output.path)
        #expect(get.status == 0, "\(get.stderr)")
        #expect(try String(contentsOf: output.appendingPathComponent("exitCode"), encoding: .utf8) == "7")
        #expect(try String(contentsOf: output.appendingPathComponent("stderr"), encoding: .utf8) == "this goes to stderr\n")
        #expect(try String(contentsOf: output.appendingPathComponent("stdout"), encoding: .utf8).contains("GREETING=hello"))
    }

    @Test func inputsOutputsAndRelativePaths() async throws {
        let stack = try await SharedDevstack.shared.get()
        let inputs = try Paths.temporaryDirectory("cod-inputs")
        try FileManager.default.createDirectory(at: inputs.appendingPathComponent("nested"), withIntermediateDirectories: true)
        try Data("hello input\n".utf8).write(to: inputs.appendingPathComponent("data.txt"))
        try Data("inner file\n".utf8).write(to: inputs.appendingPathComponent("nested/inner.txt"))
        let (id, result) = try await runJob(stack, ["wasm", "run", try Paths.fixture("files"), "-i", "\(inputs.path):/inputs"])
        #expect(result.status == 0, "\(result.stderr)")
        let output = try Paths.temporaryDirectory("cod-get")
        let get = try await stack.cod("job", "get", id, "--output-dir", output.path)
        #expect(get.status == 0, "\(get.stderr)")
        let stdout = try String(contentsOf: output.appendingPathComponent("stdout"), encoding: .utf8)
        #expect(stdout.contains("read: hello input"))
        #expect(stdout.contains("nested: inner file"))
        #expect(try String(contentsOf: output.appendingPathComponent("outputs/upper.txt"), encoding: .utf8) == "HELLO INPUT\n")
        #expect(try String(contentsOf: output.appendingPathComponent("outputs/relative.txt"), encoding: .utf8)
            == "written through a relative path\n")
        #expect(try String(contentsOf: output.appendingPathComponent("exitCode"), encoding: .utf8) == "0")
        // Logs come back through the orchestrator too.
        let logs = try await stack.cod("job", "logs", id)
        #expect(logs.stdout.contains("read: hello input"))
    }

    @Test func importModulesLinkExplicitlyAndByName() async throws {
        let stack = try await SharedDevstack.shared.get()
        let explicit = try await stack.cod("wasm", "run", try Paths.fixture("usemath"), "-I", try Paths.fixture("mathlib"))
        #expect(explicit.status == 0, "\(explicit.stderr)")
        #expect(explicit.stdout.contains("add(2,3)=5 triple(7)=21"))
        // A job file where mathlib.wasm merely sits next to the entry module: resolved by name.
        let entry = try Data(contentsOf: URL(fileURLWithPath: try Paths.fixture("usemath"))).base64EncodedString()
        let library = try Data(contentsOf: URL(fileURLWithPath: try Paths.fixture("mathlib"))).base64EncodedString()
        let spec = """
            Name: dynamic-imports
            Type: batch
            Tasks:
              - Name: main
                Engine:
                  Type: wasm
                  Params:
                    EntryModule: /app/usemath.wasm
                InputSources:
                  - Target: /app/usemath.wasm
                    Source: {Type: inline, Params: {URL: "data:application/wasm;base64,\(entry)"}}
                  - Target: /app/mathlib.wasm
                    Source: {Type: inline, Params: {URL: "data:application/wasm;base64,\(library)"}}
            """
        let file = try Paths.temporaryDirectory("cod-spec").appendingPathComponent("job.yaml")
        try Data(spec.utf8).write(to: file)
        let implicit = try await stack.cod("job", "run", file.path)
        #expect(implicit.status == 0, "\(implicit.stderr)")
        #expect(implicit.stdout.contains("add(2,3)=5 triple(7)=21"))
    }

    @Test func trapFailsWithTheTrapMessage() async throws {
        let stack = try await SharedDevstack.shared.get()
        let result = try await stack.cod("wasm", "run", try Paths.fixture("trap"))
        #expect(result.status != 0)
        #expect(result.stderr.contains("trapped"), "\(result.stderr)")
        #expect(result.stderr.contains("unreachable"), "\(result.stderr)")
        #expect(try await stack.cod("agent", "alive").stdout.contains("OK"))
    }

    @Test func runawayModuleIsStoppedAtItsTimeout() async throws {
        let stack = try await SharedDevstack.shared.get()
        let result = try await stack.cod("wasm", "run", try Paths.fixture("spin"), "--timeout", "2")
        #expect(result.status != 0)
        #expect(result.stderr.contains("timed out after 2s"), "\(result.stderr)")
        // The node is free again and the server keeps serving.
        let after = try await stack.cod("wasm", "run", try Paths.fixture("echo_env"))
        #expect(after.status == 0, "\(after.stderr)")
    }

    @Test func fuelBudgetStopsARunawayModuleDeterministically() async throws {
        let stack = try await SharedDevstack.shared.get()
        let result = try await stack.cod("wasm", "run", try Paths.fixture("spin"), "--fuel", "5000000", "--timeout", "60")
        #expect(result.status != 0)
        #expect(result.stderr.contains("the module trapped: out of fuel"), "\(result.stderr)")
        // A module that finishes within its budget is unaffected.
        let within = try await stack.cod("wasm", "run", try Paths.fixture("echo_env"), "--fuel", "50000000")
        #expect(within.status == 0, "\(within.stderr)")
    }

    @Test func memoryLimitCapsLinearMemory() async throws {
        let stack = try await SharedDevstack.shared.get()
        let capped = try await stack.cod("wasm", "run", try Paths.fixture("hog"), "--memory", "64Mb", "-e", "MEGABYTES=200")
        #expect(capped.stdout.contains("allocation of 200 MiB refused"), "\(capped.stdout)\(capped.stderr)")
        #expect(capped.stdout.contains("(exit code 3)"))
        let roomy = try await stack.cod("wasm", "run", try Paths.fixture("hog"), "--memory", "512Mb", "-e", "MEGABYTES=200")
        #expect(roomy.stdout.contains("allocated 200 MiB"), "\(roomy.stdout)\(roomy.stderr)")
    }

    @Test func totalTimeoutEndsAJobThatRunsTooLong() async throws {
        let stack = try await SharedDevstack.shared.get()
        let dry = try await stack.cod("wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=60", "--dry-run")
        var spec = try #require(try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])
        var tasks = try #require(spec["Tasks"] as? [[String: Any]])
        tasks[0]["Timeouts"] = ["TotalTimeout": 2]
        spec["Tasks"] = tasks
        let file = try Paths.temporaryDirectory("cod-total").appendingPathComponent("job.json")
        try JSONSerialization.data(withJSONObject: spec).write(to: file)
        let run = try await stack.cod("job", "run", file.path)
        // It ends at its total timeout (the module would sleep for a minute).
        #expect(run.status != 0)
        #expect(run.stderr.contains("Timeouts.TotalTimeout (2s)"), "\(run.stderr)")
        let id = try #require(run.stdout.split(whereSeparator: \.isWhitespace).last { $0.hasPrefix("j-") }.map(String.init))
        let job = try await describe(stack, id)
        #expect(job.executions?.items.allSatisfy { $0.computeState.stateType != .completed } == true)
    }

    @Test func submittingANamedJobAgainUpdatesIt() async throws {
        let stack = try await SharedDevstack.shared.get()
        let name = "updatable-\(UUID().uuidString.prefix(6).lowercased())"
        let folder = try Paths.temporaryDirectory("cod-update")
        func specFile(greeting: String, type: String = "batch") async throws -> String {
            let dry = try await stack.cod("wasm", "run", try Paths.fixture("echo_env"), "-e", "GREETING=\(greeting)", "--dry-run")
            var spec = try #require(try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])
            spec["Name"] = name
            spec["Type"] = type
            let file = folder.appendingPathComponent("\(greeting)-\(type).json")
            try JSONSerialization.data(withJSONObject: spec).write(to: file)
            return file.path
        }
        let first = try await stack.cod("job", "run", try await specFile(greeting: "one"))
        #expect(first.stdout.contains("GREETING=one"), "\(first.stdout)\(first.stderr)")
        let id = try #require(first.stdout.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("j-") }.map(String.init))
        // The same spec again: nothing changes.
        let same = try await stack.cod("job", "run", try await specFile(greeting: "one"))
        #expect(same.stderr.contains("is unchanged (version 1)"), "\(same.stderr)")
        #expect(same.stdout.contains(id))
        // A changed spec under the same name: the same job, version 2, running the new spec.
        let changed = try await stack.cod("job", "run", try await specFile(greeting: "two"))
        #expect(changed.stderr.contains("updated job \(name) to version 2"), "\(changed.stderr)")
        #expect(changed.stdout.contains(id) && changed.stdout.contains("GREETING=two") && !changed.stdout.contains("GREETING=one"))
        let job = try await describe(stack, id)
        #expect(job.job.version == 2 && job.job.state.stateType == .completed)
        #expect(job.job.tasks.first?.env["GREETING"] == "two")
        // Its type cannot change.
        let retyped = try await stack.cod("job", "run", try await specFile(greeting: "three", type: "ops"))
        #expect(retyped.status != 0 && retyped.stderr.contains("is a batch job; an update cannot make it ops"), "\(retyped.stderr)")
    }

    @Test func rerunMakesANewVersion() async throws {
        let stack = try await SharedDevstack.shared.get()
        let (id, first) = try await runJob(stack, ["wasm", "run", try Paths.fixture("partition"), "--count", "2"])
        #expect(first.status == 0, "\(first.stderr)")
        let rerun = try await stack.cod("job", "rerun", id, "--reason", "inputs changed")
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.stdout.contains("rerun as version 2"), "\(rerun.stdout)")
        #expect(rerun.stdout.contains("partition 0 of 2") && rerun.stdout.contains("partition 1 of 2"))
        let job = try await describe(stack, id)
        #expect(job.job.version == 2 && job.job.state.stateType == .completed)
        let executions = job.executions?.items ?? []
        #expect(executions.filter { $0.jobVersion == 1 }.count == 2 && executions.filter { $0.jobVersion == 2 }.count == 2)
        // Results are the current version's: one per partition, not one per run.
        let results = try await stack.client.results(id)
        #expect(results.count == 2)
        let history = try await stack.cod("job", "history", id)
        #expect(history.stdout.contains("rerun as version 2: inputs changed"), "\(history.stdout)")
        // A rerun that names a version no longer current is refused.
        let stale = try await stack.cod("job", "rerun", id, "--version", "1")
        #expect(stale.status != 0 && stale.stderr.contains("is at version 2"), "\(stale.stderr)")
    }

    @Test func partitionsRunAndMerge() async throws {
        let stack = try await SharedDevstack.shared.get()
        let (id, result) = try await runJob(stack, ["wasm", "run", try Paths.fixture("partition"), "--count", "3"])
        #expect(result.status == 0, "\(result.stderr)")
        let job = try await describe(stack, id)
        let executions = job.executions?.items ?? []
        #expect(Set(executions.filter { $0.computeState.stateType == .completed }.map(\.partitionIndex)) == [0, 1, 2])
        // Spread over the nodes.
        #expect(Set(executions.map(\.nodeID)).count == 3)
        let output = try Paths.temporaryDirectory("cod-get")
        _ = try await stack.cod("job", "get", id, "--output-dir", output.path)
        for index in 0..<3 {
            #expect(try String(contentsOf: output.appendingPathComponent("outputs/part-\(index).txt"), encoding: .utf8)
                == "partition \(index) of 3\n")
        }
        let stdout = try String(contentsOf: output.appendingPathComponent("stdout"), encoding: .utf8)
        #expect(stdout.split(separator: "\n").count == 3)
        // Each partition's result is one CID (the ipfs publisher is the default): fetchable and
        // verifiable by anyone through the gateway.
        let results = try await stack.client.results(id)
        #expect(results.count == 3)
        #expect(results.allSatisfy { $0.type == "ipfs" })
        for result in results {
            let cid = try #require(result.params["CID"]?.stringValue)
            let index = try #require(result.params["PartitionIndex"]?.intValue)
            let cat = try await stack.cod("data", "cat", "\(cid)/outputs/part-\(index).txt")
            #expect(cat.stdout == "partition \(index) of 3\n", "\(cat.stderr)")
        }
    }

    @Test func badInputGetsClearErrorsAndTheServerKeepsServing() async throws {
        let stack = try await SharedDevstack.shared.get()
        let directory = try Paths.temporaryDirectory("cod-bad")
        let bad = directory.appendingPathComponent("bad.yaml")
        try Data("""
            Type: batch
            Tasks:
              - Name: main
                Engine: {Type: wasm, Params: {EntryModule: /nowhere.wasm}}
                Resources: {Memory: lots}
                ResultPaths: [{Name: out, Path: relative/../../x}]
            """.utf8).write(to: bad)
        let run = try await stack.cod("job", "run", bad.path)
        #expect(run.status != 0)
        #expect(run.stderr.contains("Tasks[0].Engine.Params.EntryModule"), "\(run.stderr)")
        #expect(run.stderr.contains("Tasks[0].Resources.Memory"))
        #expect(run.stderr.contains("Tasks[0].ResultPaths[0].Path"))

        // The server validates too: a client that skips validation gets a 400 listing problems.
        let client = stack.client
        var task = JobTask(name: "main", engine: SpecConfig(type: "wasm", params: ["EntryModule": "/x.wasm"]))
        task.resources.cpu = "a lot"
        do {
            _ = try await client.submit(Job(type: "batch", tasks: [task]))
            Issue.record("an invalid job was accepted")
        } catch let error as CodError {
            #expect(error.code == .invalidJob)
            #expect(error.message.contains("Tasks[0].Resources.CPU"))
            #expect(error.message.contains("Tasks[0].Engine.Params.EntryModule"))
        }
        let garbage = directory.appendingPathComponent("garbage.yaml")
        try Data("Tasks: [unclosed".utf8).write(to: garbage)
        let parse = try await stack.cod("job", "run", garbage.path)
        #expect(parse.status != 0)
        #expect(parse.stderr.contains("not valid YAML or JSON"))

        let unknown = try await stack.cod("job", "describe", "j-doesnotexist")
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("job j-doesnotexist not found"), "\(unknown.stderr)")
        let missingFile = try await stack.cod("job", "run", "/no/such/job.yaml")
        #expect(missingFile.status != 0)
        #expect(missingFile.stderr.contains("cannot read job file"))
        #expect(try await stack.cod("agent", "alive").stdout.contains("OK"))
    }

    /// Bacalhau's published Python client (bacalhau-apiclient), unchanged, against Cod.
    @Test func bacalhauPythonClientWorksUnchanged() async throws {
        let stack = try await SharedDevstack.shared.get()
        let script = Paths.packageRoot.appendingPathComponent("Tests/Python/bacalhau_client_check.py").path
        let result = try await Run.async(
            ["/usr/bin/env", "python3", script, String(stack.port), try Paths.fixture("echo_env")], environment: ["BACALHAU_API_KEY": stack.apiKey])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains(" passed, 0 failed"), "\(result.stdout)\(result.stderr)")
    }

    @Test func jobNoNodeCanRunSaysWhyPerNode() async throws {
        let stack = try await SharedDevstack.shared.get()
        let spec = try Paths.temporaryDirectory("cod-docker").appendingPathComponent("docker.yaml")
        try Data("""
            Name: needs-docker
            Type: batch
            Tasks:
              - Name: main
                Engine: {Type: docker, Params: {Image: busybox:1.37.0, Entrypoint: [echo, hi]}}
            """.utf8).write(to: spec)
        let result = try await stack.cod("job", "run", spec.path)
        #expect(result.status != 0)
        #expect(result.stderr.contains("not enough nodes to run job"), "\(result.stderr)")
        #expect(result.stderr.components(separatedBy: "engine docker not supported").count - 1 == 3, "\(result.stderr)")
    }

    @Test func listPagination() async throws {
        let stack = try await SharedDevstack.shared.get()
        for _ in 0..<3 { _ = try await stack.cod("wasm", "run", try Paths.fixture("echo_env"), "--wait=false") }
        let client = stack.client
        let first = try await client.listJobs(limit: 2)
        #expect(first.items.count == 2)
        #expect(!first.nextToken.isEmpty)
        let second = try await client.listJobs(limit: 2, nextToken: first.nextToken)
        #expect(!second.items.isEmpty)
        #expect(Set(first.items.map(\.id)).isDisjoint(with: second.items.map(\.id)))
    }

    @Test func listingAndStopping() async throws {
        let stack = try await SharedDevstack.shared.get()
        let submitted = try await stack.cod(
            "wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=30", "--wait=false", "--id-only")
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(id.hasPrefix("j-"))
        let list = try await stack.cod("job", "list", "--limit", "100", "--output", "json")
        #expect(list.stdout.contains(id))
        // Wait for it to run, then stop it.
        for _ in 0..<100 {
            if try await describe(stack, id).executions?.items.contains(where: { $0.computeState.stateType == .running }) == true { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let stop = try await stack.cod("job", "stop", String(id.prefix(12)), "--reason", "testing stop")
        #expect(stop.status == 0, "\(stop.stderr)")
        var final = try await describe(stack, id)
        for _ in 0..<100 where final.executions?.items.contains(where: { !$0.computeState.stateType.isTerminal }) == true {
            try await Task.sleep(for: .milliseconds(100))
            final = try await describe(stack, id)
        }
        #expect(final.job.state.stateType == .stopped)
        #expect(final.job.state.message == "testing stop")
        #expect(final.executions?.items.allSatisfy { $0.computeState.stateType.isTerminal } == true)
        let again = try await stack.cod("job", "stop", id)
        #expect(again.status != 0)
        #expect(again.stderr.contains("already ended"))
        let history = try await stack.cod("job", "history", id)
        #expect(history.stdout.contains("testing stop"))
        let nodes = try await stack.cod("node", "list")
        #expect(nodes.stdout.contains("HEALTHY"))
    }
}

@Suite("Separate server processes")
struct SeparateProcessesTests {
    /// `cod serve --orchestrator` and two `cod serve --compute` processes, joined by token.
    @Test func orchestratorAndComputeNodesAsProcesses() async throws {
        let base = try Paths.temporaryDirectory("cod-serve")
        let port = try freePort()
        let cod = try Paths.cod
        func start(_ arguments: [String], log: String) throws -> Process {
            let process = Process()
            process.executableURL = cod
            process.arguments = arguments
            let file = base.appendingPathComponent(log)
            FileManager.default.createFile(atPath: file.path, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: file)
            process.standardError = try FileHandle(forWritingTo: file)
            try process.run()
            Registry.shared.add(process)
            return process
        }
        let orchestrator = try start(
            ["serve", "--orchestrator", "--host", "127.0.0.1", "--port", String(port), "--data-dir", base.appendingPathComponent("o").path,
             "--token", "secret-token"], log: "orchestrator.log")
        let computes = try (0..<2).map { index in
            try start(
                ["serve", "--compute", "--compute-port", "0", "--orchestrators", "http://127.0.0.1:\(port)", "--token", "secret-token",
                 "--labels", "rack=r\(index)", "--data-dir", base.appendingPathComponent("c\(index)").path], log: "compute\(index).log")
        }
        // A node with the wrong token is refused and never listed.
        let intruder = try start(
            ["serve", "--compute", "--compute-port", "0", "--orchestrators", "http://127.0.0.1:\(port)", "--token", "wrong",
             "--data-dir", base.appendingPathComponent("bad").path], log: "intruder.log")
        defer {
            for process in computes + [intruder, orchestrator] where process.isRunning { process.interrupt() }
        }
        var environment = ["COD_API_PORT": String(port), "COD_API_HOST": "127.0.0.1"]
        environment["COD_API_KEY"] = try await ChildProcesses(executable: cod, logs: base).adminKey(data: base.appendingPathComponent("o"))
        var connected = 0
        for _ in 0..<200 {
            let nodes = try await Run.async([cod.path, "node", "list", "--output", "json"], environment: environment)
            connected = nodes.stdout.components(separatedBy: "\"Connection\" : \"CONNECTED\"").count - 1
            if connected == 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(connected == 2)
        let job = try await Run.async(
            [cod.path, "wasm", "run", try Paths.fixture("partition"), "--count", "2"], environment: environment)
        #expect(job.status == 0, "\(job.stderr)")
        #expect(job.stdout.contains("partition 0 of 2"))
        #expect(job.stdout.contains("partition 1 of 2"))
        let intruderLog = try String(contentsOf: base.appendingPathComponent("intruder.log"), encoding: .utf8)
        #expect(intruderLog.contains("invalid join token"), "\(intruderLog)")
    }
}

/// An orchestrator and compute nodes as separate processes, restarted one at a time.
struct ServeCluster {
    let base: URL
    let port: Int
    let cod: URL
    /// Where the orchestrator listens (a veth address in the network-namespace tests).
    var host = "127.0.0.1"
    /// `https` when the orchestrator serves TLS.
    var scheme = "http"
    /// More variables for the CLI (the TLS tests' COD_TLS_FINGERPRINT).
    var extraEnvironment: [String: String] = [:]
    var environment: [String: String] {
        var environment = ["COD_API_PORT": String(port), "COD_API_HOST": host]
        environment["COD_API_KEY"] = adminKey
        return environment.merging(extraEnvironment) { $1 }
    }

    /// The orchestrator's admin key, once it has started and written it.
    var adminKey: String? {
        (try? String(contentsOf: base.appendingPathComponent("o/orchestrator/admin.key"), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    init(host: String = "127.0.0.1") throws {
        base = try Paths.temporaryDirectory("cod-restart")
        port = try freePort()
        cod = try Paths.cod
        self.host = host
    }

    func start(_ arguments: [String], log: String, executable: URL? = nil) throws -> Process {
        let process = Process()
        process.executableURL = executable ?? cod
        process.arguments = arguments
        let file = base.appendingPathComponent(log)
        if !FileManager.default.fileExists(atPath: file.path) { FileManager.default.createFile(atPath: file.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: file)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        Registry.shared.add(process)
        return process
    }

    func orchestrator(_ extra: [String] = []) throws -> Process {
        try start(
            ["serve", "--orchestrator", "--host", host, "--port", String(port), "--node-timeout", "20",
             "--data-dir", base.appendingPathComponent("o").path, "--token", "t0ken"] + extra, log: "orchestrator.log")
    }

    func compute(_ index: Int, _ extra: [String] = [], namespace: String? = nil, orchestratorHost: String? = nil) throws -> Process {
        let url = "\(scheme)://\(orchestratorHost ?? host):\(port)"
        let arguments = ["serve", "--compute", "--compute-port", "0", "--orchestrators", url, "--token", "t0ken",
                         "--data-dir", base.appendingPathComponent("c\(index)").path] + extra
        guard let namespace else { return try start(arguments, log: "compute\(index).log") }
        // `ip netns exec` execs cod in the namespace: the process is cod itself.
        return try start(["netns", "exec", namespace, cod.path] + arguments, log: "compute\(index).log", executable: URL(fileURLWithPath: "/usr/sbin/ip"))
    }

    func nodes() async throws -> [NodeState] {
        let result = try await cli("node", "list", "--output", "json")
        guard result.status == 0 else { throw TestFailure("node list failed: \(result.stderr)") }
        return try JSONDecoder().decode(ListNodesResponse.self, from: Data(result.stdout.utf8)).nodes
    }

    func cli(_ arguments: String...) async throws -> CommandResult {
        try await Run.async([cod.path] + arguments, environment: environment)
    }

    func cli(_ arguments: [String]) async throws -> CommandResult {
        try await Run.async([cod.path] + arguments, environment: environment)
    }

    func waitForNodes(_ count: Int) async throws {
        for _ in 0..<300 {
            let nodes = try await cli("node", "list", "--output", "json")
            if nodes.stdout.components(separatedBy: "\"Connection\" : \"CONNECTED\"").count - 1 >= count { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("nodes did not connect")
    }

    func state(_ id: String) async throws -> GetJobResponse? {
        let result = try await cli("job", "describe", id, "--output", "json")
        guard result.status == 0 else { return nil }
        return try? JSONDecoder().decode(GetJobResponse.self, from: Data(result.stdout.utf8))
    }

    /// Waits (up to 5 s) until the job has a running execution.
    func waitForRunning(_ id: String) async throws {
        for _ in 0..<100 {
            if try await state(id)?.executions?.items.contains(where: { $0.computeState.stateType == .running }) == true { return }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Waits for the job to end, tolerating moments when the API is down.
    func waitForEnd(_ id: String, seconds: Double = 60) async throws -> GetJobResponse {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let job = try await state(id), job.job.state.stateType.isTerminal { return job }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("job \(id) did not end in \(seconds) s\n" + ((try? String(contentsOf: base.appendingPathComponent("orchestrator.log"), encoding: .utf8)) ?? ""))
    }

    func kill9(_ process: Process) {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

@Suite("Restarting one process at a time", .serialized)
struct ProcessRestartTests {
    /// The orchestrator dies mid-job and comes back on the same data and port; the compute
    /// node keeps running, reconnects, replays its unacknowledged reports, and the job
    /// completes once, with its result.
    @Test func orchestratorRestartWhileComputeRuns() async throws {
        let cluster = try ServeCluster()
        var orchestrator = try cluster.orchestrator()
        let compute = try cluster.compute(0)
        defer {
            for process in [orchestrator, compute] where process.isRunning { process.interrupt() }
        }
        try await cluster.waitForNodes(1)
        let submitted = try await Run.async(
            [cluster.cod.path, "wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=3", "--wait=false", "--id-only"],
            environment: cluster.environment)
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await cluster.waitForRunning(id)
        cluster.kill9(orchestrator)
        try await Task.sleep(for: .seconds(4))  // the module finishes while the orchestrator is down
        orchestrator = try cluster.orchestrator()
        let job = try await cluster.waitForEnd(id)
        #expect(job.job.state.stateType == .completed, "\(job.job.state)")
        let executions = job.executions?.items ?? []
        #expect(executions.count == 1, "the report was replayed, not the work redone: \(executions.map(\.computeState))")
        let output = try Paths.temporaryDirectory("cod-get")
        let get = try await cluster.cli("job", "get", id, "--output-dir", output.path)
        #expect(get.status == 0, "\(get.stderr)")
        #expect(try String(contentsOf: output.appendingPathComponent("outputs/done.txt"), encoding: .utf8) == "done\n")
    }

    /// A compute node finishes while the orchestrator is down, then dies itself before it could
    /// report. Its unacknowledged report is on its disk: the next process delivers it, and the
    /// work is not redone.
    @Test func computeKeepsItsReportAcrossARestart() async throws {
        let cluster = try ServeCluster()
        var orchestrator = try cluster.orchestrator()
        var compute = try cluster.compute(0)
        defer {
            for process in [orchestrator, compute] where process.isRunning { process.interrupt() }
        }
        try await cluster.waitForNodes(1)
        // No publisher upload: the report is ready the moment the module ends.
        let dry = try await Run.async(
            [cluster.cod.path, "wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=2", "--dry-run"], environment: cluster.environment)
        var spec = try #require(try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])
        var tasks = try #require(spec["Tasks"] as? [[String: Any]])
        tasks[0]["Publisher"] = ["Type": "noop"]
        spec["Tasks"] = tasks
        let file = cluster.base.appendingPathComponent("noop-job.json")
        try JSONSerialization.data(withJSONObject: spec).write(to: file)
        let submitted = try await Run.async(
            [cluster.cod.path, "job", "run", file.path, "--wait=false", "--id-only"], environment: cluster.environment)
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        try await cluster.waitForRunning(id)
        cluster.kill9(orchestrator)
        // The module ends; its report cannot be delivered and waits in the node's outbox file.
        let outbox = cluster.base.appendingPathComponent("c0/compute/outbox.json")
        for _ in 0..<300 {
            if let text = try? String(contentsOf: outbox, encoding: .utf8), text.contains("runResult") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try String(contentsOf: outbox, encoding: .utf8).contains("runResult"))
        cluster.kill9(compute)
        orchestrator = try cluster.orchestrator()
        compute = try cluster.compute(0)
        let job = try await cluster.waitForEnd(id)
        #expect(job.job.state.stateType == .completed, "\(job.job.state)")
        let executions = job.executions?.items ?? []
        #expect(executions.count == 1, "the kept report was delivered, not the work redone: \(executions.map(\.computeState))")
        #expect(executions.first?.runOutput?.stdout == "slept 2\n")
    }

    /// A compute node dies mid-job and restarts with the same identity; the lost execution is
    /// failed as retryable and the work runs again, to completion.
    @Test func computeRestartMidJob() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator()
        var compute = try cluster.compute(0)
        defer {
            for process in [orchestrator, compute] where process.isRunning { process.interrupt() }
        }
        try await cluster.waitForNodes(1)
        let submitted = try await Run.async(
            [cluster.cod.path, "wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=2", "--wait=false", "--id-only"],
            environment: cluster.environment)
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await cluster.waitForRunning(id)
        cluster.kill9(compute)
        compute = try cluster.compute(0)
        let job = try await cluster.waitForEnd(id)
        #expect(job.job.state.stateType == .completed, "\(job.job.state)")
        let executions = job.executions?.items ?? []
        #expect(executions.filter { $0.computeState.stateType == .completed }.count == 1)
        #expect(executions.contains { $0.computeState.stateType == .failed && $0.computeState.message.contains("restarted") })
        #expect(Set(executions.map(\.nodeID)).count == 1, "same node identity after restart")
    }
}

/// A TCP port nothing listens on right now (the same probe `cod bench` uses).
func freePort() throws -> Int {
    try Ports.free()
}

@Suite("Crash recovery")
struct CrashRecoveryTests {
    @Test(arguments: [SIGTERM, SIGINT])
    func shutsDownCleanlyOnSignal(signal: Int32) async throws {
        let stack = try await DevstackProcess.start(dataDirectory: try Paths.temporaryDirectory("cod-signal"), computes: 1)
        kill(stack.process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(15)
        while stack.process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!stack.process.isRunning, "devstack still running 15 s after signal \(signal)")
        stack.stop()
        #expect(stack.process.terminationStatus == 0, "exit status \(stack.process.terminationStatus)\n\(stack.logText)")
    }

    /// Kill -9 the whole devstack mid-job and restart it on the same data folder: finished
    /// jobs and results survive, and the interrupted job ends in a definite state.
    @Test func killNineMidJobThenRestart() async throws {
        let data = try Paths.temporaryDirectory("cod-crash")
        var stack = try await DevstackProcess.start(dataDirectory: data)
        let (doneID, done) = try await runJob(stack, ["wasm", "run", try Paths.fixture("echo_env"), "before-crash"])
        #expect(done.status == 0, "\(done.stderr)")
        let submitted = try await stack.cod(
            "wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=8", "--wait=false", "--id-only")
        let interruptedID = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // On a loaded machine the job can take seconds to start: wait for it to run, then kill.
        for _ in 0..<400 {
            if try await describe(stack, interruptedID).executions?.items.contains(where: { $0.computeState.stateType == .running }) == true { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        stack.kill9()

        stack = try await DevstackProcess.start(dataDirectory: data)
        defer { stack.stop() }
        // The finished job and its result are intact.
        let finished = try await describe(stack, doneID)
        #expect(finished.job.state.stateType == .completed)
        let output = try Paths.temporaryDirectory("cod-get")
        let get = try await stack.cod("job", "get", doneID, "--output-dir", output.path)
        #expect(get.status == 0, "\(get.stderr)")
        #expect(try String(contentsOf: output.appendingPathComponent("stdout"), encoding: .utf8).contains("argv[1]=before-crash"))
        // The interrupted job is rerun and ends.
        var job = try await describe(stack, interruptedID)
        let deadline = Date().addingTimeInterval(60)
        while !job.job.state.stateType.isTerminal && Date() < deadline {
            try await Task.sleep(for: .milliseconds(200))
            job = try await describe(stack, interruptedID)
        }
        #expect(job.job.state.stateType == .completed, "state \(job.job.state.stateType): \(job.job.state.message)\n\(stack.logText)")
        let executions = job.executions?.items ?? []
        #expect(executions.filter { $0.computeState.stateType == .completed }.count == 1, "one completed execution, no duplicates")
        #expect(executions.contains { $0.computeState.message.contains("restarted") }, "the lost attempt says why")
    }
}

/// The join token is a secret: made 0600 from creation, never written to the log, compared in
/// constant time, and readable from a file so it stays out of the process list.
@Suite("Join token hygiene")
struct JoinTokenHygieneTests {
    @Test func theTokenStaysOutOfTheLogAndItsFileIsTheOwnersOnly() async throws {
        let cluster = try ServeCluster()
        let (base, port) = (cluster.base, cluster.port)
        let data = base.appendingPathComponent("o")
        let orchestrator = try cluster.start(
            ["serve", "--orchestrator", "--host", "127.0.0.1", "--port", String(port), "--data-dir", data.path, "--log-level", "info"],
            log: "orchestrator.log")
        let tokenFile = data.appendingPathComponent("orchestrator/token")
        var token = ""
        for _ in 0..<100 where token.isEmpty {
            token = (try? String(contentsOf: tokenFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if token.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(!token.isEmpty)
        let mode = try FileManager.default.attributesOfItem(atPath: tokenFile.path)[.posixPermissions] as? Int
        #expect(mode == 0o600, "token file mode \(String(mode ?? 0, radix: 8))")
        // A compute node joins with the file, not the token on its command line.
        let compute = try cluster.start(
            ["serve", "--compute", "--compute-port", "0", "--orchestrators", "http://127.0.0.1:\(port)", "--token-file", tokenFile.path,
             "--data-dir", base.appendingPathComponent("c").path, "--engines", "wasm", "--log-level", "info"], log: "compute.log")
        defer { for process in [compute, orchestrator] where process.isRunning { process.interrupt() } }
        try await cluster.waitForNodes(1)
        #expect(!compute.arguments!.contains(token))
        let logs = try ["orchestrator.log", "compute.log"].map { try String(contentsOf: base.appendingPathComponent($0), encoding: .utf8) }
        #expect(logs[0].contains("--token-file \(tokenFile.path)"), "the log says where the token is")
        for log in logs { #expect(!log.contains(token), "the token appeared in a log") }
    }

    /// Without `--host`, `cod serve` listens on loopback only: its socket in /proc/net/tcp is
    /// bound to 127.0.0.1, not to every address.
    @Test func serveListensOnLoopbackUnlessToldOtherwise() async throws {
        let cluster = try ServeCluster()
        let port = cluster.port
        let process = try cluster.start(
            ["serve", "--orchestrator", "--port", String(port), "--data-dir", cluster.base.path, "--token", "t"], log: "orchestrator.log")
        defer { process.interrupt() }
        let portHex = String(format: "%04X", port)
        var listening: [String] = []
        // A loaded machine may take a while to start it; the wait ends as soon as it listens.
        for _ in 0..<600 where listening.isEmpty && process.isRunning {
            let table = (try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)) ?? ""
            // Columns: sl, local address (IP:PORT in hex), remote address, state (0A is LISTEN).
            listening = table.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
                .filter { $0.count > 3 && $0[1].hasSuffix(":" + portHex) && $0[3] == "0A" }.map { $0[1] }
            if listening.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        let log = (try? String(contentsOf: cluster.base.appendingPathComponent("orchestrator.log"), encoding: .utf8)) ?? ""
        #expect(listening == ["0100007F:" + portHex], "listening on \(listening); running: \(process.isRunning)\n\(log.suffix(2000))")
    }

    @Test func secretsCompareWithoutShortcuts() {
        #expect(Secrets.equal("abc123", "abc123"))
        #expect(!Secrets.equal("abc124", "abc123"))
        #expect(!Secrets.equal("abc12", "abc123"))
        #expect(!Secrets.equal("", "abc123"))
        #expect(!Secrets.equal("abc1234", "abc123"))
        #expect(Secrets.equal("", ""))
    }
}
