@testable import CodTestKit
import ContentAddressing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Foundation
import Models
import Testing
import Wire

/// A devstack for the security suite: two compute nodes, a short idle timeout.
actor SecurityStack {
    static let shared = SecurityStack()
    private var stack: DevstackProcess?

    func get() async throws -> DevstackProcess {
        if let stack, stack.process.isRunning { return stack }
        let started = try await DevstackProcess.start(
            dataDirectory: try Paths.temporaryDirectory("cod-security"), computes: 2, extraArguments: ["--idle-timeout", "3"])
        stack = started
        return started
    }
}

/// One HTTP exchange with the devstack's API, as its admin unless `key` says otherwise (nil:
/// no credentials).
func api(
    _ stack: DevstackProcess, _ method: String, _ path: String, body: Data? = nil, timeout: TimeInterval = 30, key: String?? = .none
) async throws -> (Int, String) {
    var request = URLRequest(url: URL(string: "http://127.0.0.1:\(stack.port)\(path)")!, timeoutInterval: timeout)
    request.httpMethod = method
    if let credential = key ?? stack.apiKey { request.setValue("Bearer \(credential)", forHTTPHeaderField: "Authorization") }
    request.httpBody = body
    if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
}

/// True when the orchestrator answers its liveness route and its process is still running.
func isServing(_ stack: DevstackProcess) async -> Bool {
    guard stack.process.isRunning, let (status, _) = try? await api(stack, "GET", "/api/v1/agent/alive", timeout: 10) else { return false }
    return status == 200
}

/// Submits a raw job spec; returns the job ID, or the error body when it was refused.
func submit(_ stack: DevstackProcess, _ spec: Data) async throws -> (id: String?, status: Int, body: String) {
    let (status, body) = try await api(stack, "PUT", "/api/v1/orchestrator/jobs", body: spec)
    let id = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["JobID"] as? String
    return (id, status, body)
}

/// Waits until the job ends; returns it.
func ended(_ stack: DevstackProcess, _ id: String, seconds: Double = 90) async throws -> GetJobResponse {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        let job = try await describe(stack, id)
        if job.job.state.stateType.isTerminal { return job }
        try await Task.sleep(for: .milliseconds(200))
    }
    throw TestFailure("job \(id) did not end in \(seconds) s")
}

/// A folder outside every Cod folder that no job may write to.
func hostMarkerFolder() throws -> URL {
    try Paths.temporaryDirectory("cod-host-marker")
}

func contents(_ folder: URL) -> [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
}

@Suite("Hostile input through the real API", .serialized)
struct SecurityTests {
    // MARK: 1. Archives

    @Test func inlineTarballsCannotWriteOnTheHost() async throws {
        let stack = try await SecurityStack.shared.get()
        let marker = try hostMarkerFolder()
        let tarball = HostileInputs.symlinkEscapeTarball(writing: marker.appendingPathComponent("pwned").path)
        let spec = try HostileInputs.processJob(["true"], inputs: [HostileInputs.inlineInput(try HostileInputs.dataURL(tarball))])
        let submitted = try await submit(stack, spec)
        let id = try #require(submitted.id, "\(submitted.body)")
        let job = try await ended(stack, id)
        #expect(job.job.state.stateType == .failed)
        #expect(contents(marker).isEmpty, "the tarball wrote \(contents(marker)) on the host")
        // A one-character symlink name once trapped in Foundation; it is an ordinary entry.
        let small = HostileInputs.tar([("s", .symlink, "", "t"), ("t", .file, "ok\n", "")])
        let fine = try await submit(stack, try HostileInputs.processJob(["cat", "/inputs/x/s"], inputs: [HostileInputs.inlineInput(try HostileInputs.dataURL(small))]))
        let done = try await ended(stack, try #require(fine.id, "\(fine.body)"))
        #expect(done.job.state.stateType == .completed, "\(done.job.state.message)")
        #expect(await isServing(stack))
    }

    @Test func hugeNumbersInTarHeadersAndGzipBombsFailTheJobOnly() async throws {
        let stack = try await SecurityStack.shared.get()
        let huge = HostileInputs.tar([("big", .file, "x", "")], base256Size: UInt64(Int64.max))
        let bomb = [UInt8](repeating: 0, count: 300 << 20)  // 300 MB of zeros, 300 KB gzipped
        for (name, payload) in [("base-256 size", huge), ("gzip bomb", bomb)] {
            let submitted = try await submit(stack, try HostileInputs.processJob(["true"], inputs: [HostileInputs.inlineInput(try HostileInputs.dataURL(payload))]))
            let job = try await ended(stack, try #require(submitted.id, "\(submitted.body)"))
            #expect(job.job.state.stateType == .failed, "\(name): \(job.executions?.items.map(\.computeState.message) ?? [])")
            #expect(await isServing(stack))
        }
    }

    // MARK: 2. Links in ipfs inputs

    @Test func ipfsInputsWithLinksOutOfTheTreeAreNeverMounted() async throws {
        let stack = try await SecurityStack.shared.get()
        let scratch = try Paths.temporaryDirectory("cod-sec-dag")
        var dag = HostileInputs.DAG()
        let climb = Array(repeating: "..", count: 40).joined(separator: "/")
        let tree = dag.directory([("ok.txt", dag.file("fine\n")), ("up", dag.symlink(climb))])
        let rootLink = dag.symlink("/")
        for root in [tree, rootLink] {
            let car = scratch.appendingPathComponent("\(root).car")
            try Data(dag.car(root: root)).write(to: car)
            let imported = try await stack.cod("data", "import", car.path)
            #expect(imported.status == 0, "\(imported.stderr)")
            let run = try await stack.cod("exec", "--id-only", "-i", "ipfs://\(root)", "--", "sh", "-c", "ls /inputs/up/ /inputs/; cat /inputs/up/etc/hostname")
            let id = jobID(run)
            let job = try await ended(stack, id)
            #expect(job.job.state.stateType == .failed, "a job saw the host through \(root): \(job.executions?.items.first?.runOutput?.stdout ?? "")")
            let stdout = job.executions?.items.compactMap { $0.runOutput?.stdout }.joined() ?? ""
            #expect(!stdout.contains("proc") && !stdout.contains("boot"), "\(stdout)")
        }
        // Links that stay inside the input are kept, and the job reads through them.
        let benign = dag.directory([("data.txt", dag.file("fine\n")), ("l", dag.symlink("data.txt"))])
        let car = scratch.appendingPathComponent("benign.car")
        try Data(dag.car(root: benign)).write(to: car)
        #expect(try await stack.cod("data", "import", car.path).status == 0)
        let run = try await stack.cod("exec", "--id-only", "-i", "ipfs://\(benign)", "--", "cat", "/inputs/l")
        let job = try await ended(stack, jobID(run))
        #expect(job.job.state.stateType == .completed, "\(job.job.state.message)")
        // A loaded machine may have retried it elsewhere: the run that completed read through the link.
        let executions = job.executions?.items ?? []
        let completed = executions.first { $0.computeState.stateType == .completed }
        #expect(completed?.runOutput?.stdout == "fine\n", "\(executions.map { "\($0.computeState.stateType): \($0.computeState.message)" })")
        #expect(await isServing(stack))
    }

    // MARK: 3. Duplicate names, clients

    @Test func aDAGWithDuplicateNamesCannotWriteOnTheClient() async throws {
        let stack = try await SecurityStack.shared.get()
        let marker = try hostMarkerFolder()
        let work = try Paths.temporaryDirectory("cod-sec-client")
        var dag = HostileInputs.DAG()
        let inner = dag.directory([("pwned", dag.file("owned\n"))])
        // The link is relative to where the client writes: work/copy/x -> the marker folder.
        let relative = "../../" + marker.lastPathComponent
        let root = dag.directory([("x", dag.symlink(relative)), ("x", inner)])
        let car = work.appendingPathComponent("dup.car")
        try Data(dag.car(root: root)).write(to: car)
        #expect(try await stack.cod("data", "import", car.path).status == 0)
        let get = try await stack.cod("data", "get", root.description, "-o", work.appendingPathComponent("copy").path)
        #expect(get.status != 0)
        #expect(contents(marker).isEmpty, "cod data get wrote \(contents(marker)) outside its folder")
        #expect(!FileManager.default.fileExists(atPath: work.appendingPathComponent("copy").path))
    }

    // MARK: 4. Requirements

    @Test func requirementsNeverRunPipOnTheHostNorReachAJobsIndex() async throws {
        let stack = try await SecurityStack.shared.get()
        // A package index on loopback that records every request.
        let indexDir = try Paths.temporaryDirectory("cod-sec-index")
        let port = Int.random(in: 20_000..<40_000)
        let log = indexDir.appendingPathComponent("requests.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", indexDir.path]
        server.standardError = try FileHandle(forWritingTo: log)
        server.standardOutput = FileHandle.nullDevice
        try server.run()
        defer { server.terminate() }
        try await Task.sleep(for: .milliseconds(500))

        let folder = try Paths.temporaryDirectory("cod-sec-py")
        let script = folder.appendingPathComponent("s.py")
        try Data("print('ran')\n".utf8).write(to: script)
        try Data("x\n".utf8).write(to: folder.appendingPathComponent("in.txt"))
        let add = try await stack.cod("data", "add", "-q", folder.appendingPathComponent("in.txt").path)
        let cid = add.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let hostile = [
            "--index-url http://127.0.0.1:\(port)/simple\nevilpkg\n",
            "-r /etc/shadow\n",
            "evilpkg @ http://127.0.0.1:\(port)/evilpkg-1.0.tar.gz\n",
            "-e /\n",
            "evilpkg\n",  // no index on this node: nothing is fetched from anywhere
        ]
        for (index, text) in hostile.enumerated() {
            let requirements = folder.appendingPathComponent("req\(index).txt")
            try Data(text.utf8).write(to: requirements)
            let run = try await stack.cod("python", "run", "--id-only", script.path, "-r", requirements.path, "-i", "ipfs://\(cid)")
            let job = try await ended(stack, jobID(run))
            #expect(job.job.state.stateType == .failed, "requirements \(index) were installed")
            let messages = (job.executions?.items.map(\.computeState.message) ?? []).joined() + job.job.state.message
            #expect(!messages.contains("root:"), "an error echoed a host file: \(messages)")
        }
        let requests = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(!requests.contains("GET"), "a job's requirements reached a local index:\n\(requests)")
        #expect(await isServing(stack))
    }

    // MARK: 5. One-request crashes

    @Test func oneRequestCrashesAreErrorsAndTheServerKeepsServing() async throws {
        let stack = try await SecurityStack.shared.get()
        // An overflowing total timeout is refused at submit with its field path.
        let timeout = try HostileInputs.processJob(["true"], task: ["Timeouts": ["TotalTimeout": 10_000_000_000_000]])
        let refused = try await submit(stack, timeout)
        #expect(refused.status == 400 && refused.body.contains("TotalTimeout"), "\(refused.body)")
        // A CID that is not one fails at submit, not on a node.
        let badCID = try HostileInputs.processJob(["true"], inputs: [["Target": "/inputs", "Source": ["Type": "ipfs", "Params": ["CID": "notacid"]]]])
        let badCIDResponse = try await submit(stack, badCID)
        #expect(badCIDResponse.status == 400 && badCIDResponse.body.contains("InputSources[0].Source.Params.CID"), "\(badCIDResponse.body)")
        #expect(await isServing(stack))

        let (carStatus, _) = try await api(stack, "PUT", "/api/v1/data/car?pin=true", body: Data(HostileInputs.carV2WithHugeOffset()))
        #expect((400..<500).contains(carStatus))
        #expect(await isServing(stack))

        let (manifestStatus, manifestBody) = try await api(stack, "PUT", "/api/v1/orchestrator/datasets", body: try HostileInputs.overflowingManifest())
        #expect(manifestStatus == 400, "\(manifestBody)")
        #expect(await isServing(stack))

        // A file node claiming 2^64-1 bytes, fetched through the gateway.
        var dag = HostileInputs.DAG()
        let leaf = dag.file("tiny")
        let liar = dag.put(PBNode(links: [PBLink(hash: leaf, name: nil, tsize: 4)], data: UnixFSData(kind: .file, fileSize: .max, blockSizes: [.max]).encode()))
        let (importStatus, importBody) = try await api(stack, "PUT", "/api/v1/data/car", body: Data(dag.car(root: liar)))
        #expect(importStatus == 200, "\(importBody)")
        let (gatewayStatus, _) = try await api(stack, "GET", "/ipfs/\(liar)")
        #expect((400..<600).contains(gatewayStatus))
        #expect(await isServing(stack))
    }

    // MARK: 6. Exhaustion

    @Test func oversizedBodiesAreRefusedAndHalfSentRequestsAreClosed() async throws {
        let stack = try await SecurityStack.shared.get()
        let big = String(repeating: "A", count: 5 << 20)
        let spec = try HostileInputs.processJob(["true"], inputs: [HostileInputs.inlineInput("data:text/plain;base64," + big)])
        let (status, _) = try await api(stack, "PUT", "/api/v1/orchestrator/jobs", body: spec)
        #expect(status == 413)
        #expect(await isServing(stack))

        // 300 connections that send half a request head and then nothing.
        var sockets: [Int32] = []
        for _ in 0..<300 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(stack.port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { close(fd); continue }
            _ = "GET /api/v1/agent/alive HTTP/1.1\r\nHost: x\r\n".withCString { send(fd, $0, strlen($0), 0) }
            sockets.append(fd)
        }
        defer { for fd in sockets { close(fd) } }
        #expect(sockets.count >= 250)
        #expect(await isServing(stack), "half-sent requests must not starve real ones")
        // The devstack runs with --idle-timeout 3: after it every half-sent request is closed.
        try await Task.sleep(for: .seconds(6))
        var closed = 0
        for fd in sockets {
            var byte: UInt8 = 0
            if recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0 { closed += 1 }
        }
        #expect(closed == sockets.count, "\(sockets.count - closed) half-sent connections still open after the idle timeout")
        #expect(await isServing(stack))
    }
}

@Suite("Hostile outputs and containers", .serialized)
struct HostileOutputTests {
    @Test func specialFilesInOutputsFailTheRunAndSetIDBitsNeverReachAResult() async throws {
        let stack = try await SecurityStack.shared.get()
        let fifo = try await stack.cod("exec", "--id-only", "-o", "outputs:/outputs", "--", "sh", "-c", "mkfifo /outputs/pipe; echo made")
        let fifoJob = try await ended(stack, jobID(fifo))
        #expect(fifoJob.job.state.stateType == .failed, "a FIFO was published")
        let setID = try await stack.cod(
            "exec", "--id-only", "-o", "outputs:/outputs", "--", "sh", "-c", "cp /bin/sh /outputs/tool; chmod 6755 /outputs/tool")
        let id = jobID(setID)
        let job = try await ended(stack, id)
        #expect(job.job.state.stateType == .completed, "\(job.job.state.message)")
        let output = try await results(stack, id)
        let mode = try FileManager.default.attributesOfItem(atPath: output.appendingPathComponent("outputs/tool").path)[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o7000 } == 0, "mode \(String(mode ?? 0, radix: 8))")
        #expect(await isServing(stack))
    }

    @Test func containersRunWithoutCapabilities() async throws {
        let stack = try await EngineStack.shared.get()
        let script = "mknod /outputs/null c 1 3 && echo MKNOD-WORKED; chown 1234 /outputs 2>/dev/null && echo CHOWN-WORKED; echo done"
        let run = try await stack.cod("docker", "run", "--id-only", "-o", "outputs:/outputs", PodmanService.image, "--", "sh", "-c", script)
        let id = jobID(run)
        let output = try await results(stack, id)
        let stdout = text(output, "stdout")
        #expect(stdout.contains("done"), "\(stdout) \(text(output, "stderr"))")
        #expect(!stdout.contains("MKNOD-WORKED") && !stdout.contains("CHOWN-WORKED"), "\(stdout)")
        var info = stat()
        #expect(lstat(output.appendingPathComponent("outputs/null").path, &info) != 0, "a device node reached the result")
    }
}

@Suite("The cluster under a hostile loop", .serialized)
struct HostileLoopTests {
    /// For a bounded time, every class of hostile request is sent again and again while
    /// ordinary jobs run; the orchestrator must keep answering and every ordinary job complete.
    @Test func keepsServingAndCompletingJobs() async throws {
        let stack = try await SecurityStack.shared.get()
        let marker = try hostMarkerFolder()
        let hostile = try hostileRequests(stack, marker: marker)
        let deadline = Date().addingTimeInterval(25)
        async let attacks: Int = {
            var sent = 0
            while Date() < deadline {
                for (method, path, body) in hostile {
                    _ = try? await api(stack, method, path, body: body, timeout: 10)
                    sent += 1
                }
            }
            return sent
        }()
        var completed = 0
        var failed: [String] = []
        while Date() < deadline {
            let run = try await stack.cod("exec", "--id-only", "--", "sh", "-c", "echo ordinary")
            let job = try await ended(stack, jobID(run))
            if job.job.state.stateType == .completed { completed += 1 } else { failed.append(job.job.state.message) }
        }
        let sent = await attacks
        #expect(sent > 50, "only \(sent) hostile requests were sent")
        #expect(completed >= 3 && failed.isEmpty, "\(completed) ordinary jobs completed; failed: \(failed)")
        #expect(contents(marker).isEmpty)
        #expect(await isServing(stack))
    }

    func hostileRequests(_ stack: DevstackProcess, marker: URL) throws -> [(String, String, Data?)] {
        var dag = HostileInputs.DAG()
        let leaf = dag.file("tiny")
        let liar = dag.put(PBNode(links: [PBLink(hash: leaf, name: nil, tsize: 4)], data: UnixFSData(kind: .file, fileSize: .max, blockSizes: [.max]).encode()))
        let escape = HostileInputs.symlinkEscapeTarball(writing: marker.appendingPathComponent("pwned").path)
        let huge = HostileInputs.tar([("big", .file, "x", "")], base256Size: UInt64(Int64.max))
        // An input whose link climbs out, imported with the request before the job using it.
        let climb = Array(repeating: "..", count: 40).joined(separator: "/")
        let outward = dag.directory([("up", dag.symlink(climb))])
        let requirements = "data:text/plain;base64," + Data("--index-url http://127.0.0.1:9/simple\nevil\n".utf8).base64EncodedString()
        let pip = try JSONSerialization.data(withJSONObject: ["Job": ["Type": "batch", "Tasks": [[
            "Name": "main",
            "Engine": ["Type": "process", "Params": ["Command": "python3", "Arguments": ["-c", "print(1)"], "PythonRequirements": "/inputs/req.txt"]],
            "InputSources": [HostileInputs.inlineInput(requirements, target: "/inputs/req.txt")],
        ]]]])
        return [
            ("PUT", "/api/v1/data/car", Data(dag.car(root: outward))),
            ("PUT", "/api/v1/orchestrator/jobs", try HostileInputs.processJob(
                ["ls", "/inputs/up/"], inputs: [["Target": "/inputs", "Source": ["Type": "ipfs", "Params": ["CID": outward.description]]]])),
            ("PUT", "/api/v1/orchestrator/jobs", pip),
            ("PUT", "/api/v1/orchestrator/jobs", try HostileInputs.processJob(["true"], task: ["Timeouts": ["TotalTimeout": 10_000_000_000_000]])),
            ("PUT", "/api/v1/orchestrator/jobs", try HostileInputs.processJob(["true"], inputs: [HostileInputs.inlineInput(try HostileInputs.dataURL(escape))])),
            ("PUT", "/api/v1/orchestrator/jobs", try HostileInputs.processJob(["true"], inputs: [HostileInputs.inlineInput(try HostileInputs.dataURL(huge))])),
            ("PUT", "/api/v1/orchestrator/jobs", Data("{\"Job\": {\"Tasks\": [{\"Name\": \"".utf8) + Data(repeating: 0x41, count: 5 << 20)),
            ("PUT", "/api/v1/orchestrator/jobs", Data("{\"Job\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".utf8)),
            ("PUT", "/api/v1/data/car?pin=true", Data(HostileInputs.carV2WithHugeOffset())),
            ("PUT", "/api/v1/data/car", Data(dag.car(root: liar))),
            ("GET", "/ipfs/\(liar)", nil),
            ("GET", "/ipfs/\(String(repeating: "z", count: 100_000))", nil),
            ("PUT", "/api/v1/orchestrator/datasets", try HostileInputs.overflowingManifest()),
            ("GET", "/api/v1/orchestrator/jobs/../../../etc/passwd/logs", nil),
        ]
    }
}
