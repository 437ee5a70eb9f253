@testable import CodTestKit
import Foundation
import Models
import Testing
import Wire

/// A devstack whose compute node has every engine: podman's Docker API and bubblewrap.
actor EngineStack {
    static let shared = EngineStack()
    private var stack: DevstackProcess?

    func get() async throws -> DevstackProcess {
        if let stack, stack.process.isRunning { return stack }
        let host = try await PodmanService.shared.dockerHost()
        let started = try await DevstackProcess.start(
            dataDirectory: try Paths.temporaryDirectory("cod-engines"), computes: 1, extraArguments: ["--docker-host", host])
        // A busy podman can miss the node's first probe; the node probes again and re-advertises.
        for _ in 0..<600 {
            let nodes = try await started.cod("node", "list", "--output", "json")
            if nodes.stdout.contains("\"docker\"") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        stack = started
        return started
    }
}

/// The job ID in `cod … --id-only` output (the last line that starts with j-).
func jobID(_ result: CommandResult) -> String {
    result.stdout.split(separator: "\n").last { $0.hasPrefix("j-") }.map(String.init) ?? ""
}

/// Downloads a job's results into a new folder.
func results(_ stack: DevstackProcess, _ id: String) async throws -> URL {
    let output = try Paths.temporaryDirectory("cod-get")
    let get = try await stack.cod("job", "get", id, "--output-dir", output.path)
    guard get.status == 0 else { throw TestFailure("job get failed: \(get.stderr)") }
    return output
}

func text(_ folder: URL, _ path: String) -> String {
    (try? String(contentsOf: folder.appendingPathComponent(path), encoding: .utf8)) ?? "<missing \(path)>"
}

/// Waits until the job has an execution in `state`.
func waitForExecution(_ stack: DevstackProcess, _ id: String, state: ExecutionStateType) async throws {
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline {
        if try await describe(stack, id).executions?.items.contains(where: { $0.computeState.stateType == state }) == true { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw TestFailure("job \(id) never had an execution \(state)")
}

/// Whether any process on this machine has `marker` in its command line.
func processesWith(marker: String) -> [String] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.filter { Int($0) != nil }.compactMap { pid in
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
        let line = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        return line.contains(marker) && !line.contains("swift-test") ? "\(pid): \(line)" : nil
    }
}

@Suite("Docker engine through podman's Docker API", .serialized)
struct DockerEngineTests {
    let image = PodmanService.image

    @Test func outputsExitCodeEnvironmentAndReadOnlyInputs() async throws {
        let stack = try await EngineStack.shared.get()
        let input = try Paths.temporaryDirectory("cod-docker-in").appendingPathComponent("data.txt")
        try Data("from the input\n".utf8).write(to: input)
        let script = """
            echo "FOO=$FOO job=$BACALHAU_JOB_ID"; pwd; cat /inputs/data.txt; echo to-stderr >&2
            echo result > /outputs/result.txt
            if echo changed > /inputs/data.txt 2>/dev/null; then echo input-writable; else echo input-read-only; fi
            exit 3
            """
        let run = try await stack.cod(
            "docker", "run", "--id-only", "-e", "FOO=bar", "-w", "/tmp", "-i", "\(input.path):/inputs/data.txt", image, "--",
            "sh", "-c", script)
        #expect(run.status == 0, "\(run.stderr)\n\(stack.logText.suffix(3000))")
        let id = jobID(run)
        let job = try await describe(stack, id)
        #expect(job.job.state.stateType == .completed)
        #expect(job.executions?.items.first?.runOutput?.exitCode == 3)
        let output = try await results(stack, id)
        let stdout = text(output, "stdout")
        #expect(stdout.contains("FOO=bar job=j-"), "\(stdout)")
        #expect(stdout.contains("/tmp\n"))
        #expect(stdout.contains("from the input"))
        #expect(stdout.contains("input-read-only"))
        #expect(!stdout.contains("to-stderr"))
        #expect(text(output, "stderr").hasPrefix("to-stderr\n"))
        #expect(text(output, "exitCode") == "3")
        #expect(text(output, "outputs/result.txt") == "result\n")
        // The container is gone once the execution ends.
        let left = try await PodmanService.podman(["ps", "-a", "-q", "--filter", "label=io.cod.job=\(id)"])
        #expect(left.stdout.isEmpty, "\(left.stdout)")
    }

    @Test func largeInterleavedOutputArrivesWhole() async throws {
        let stack = try await EngineStack.shared.get()
        let run = try await stack.cod(
            "docker", "run", "--id-only", image, "--", "sh", "-c", "for i in $(seq 1 20000); do echo out-$i; echo err-$i >&2; done")
        #expect(run.status == 0, "\(run.stderr)")
        let output = try await results(stack, jobID(run))
        let stdout = text(output, "stdout").split(separator: "\n")
        let stderr = text(output, "stderr").split(separator: "\n")
        #expect(stdout.count == 20000 && stdout.first == "out-1" && stdout.last == "out-20000")
        #expect(stderr.count == 20000 && stderr.first == "err-1" && stderr.last == "err-20000")
    }

    @Test func entrypointAndJobSpecFile() async throws {
        let stack = try await EngineStack.shared.get()
        let spec = """
            Name: docker-spec
            Type: batch
            Count: 2
            Tasks:
              - Name: main
                Engine:
                  Type: docker
                  Params:
                    Image: \(image)
                    Entrypoint: ["/bin/sh", "-c"]
                    Parameters: ["echo partition $BACALHAU_PARTITION_INDEX of $BACALHAU_PARTITION_COUNT; echo $GREETING"]
                    EnvironmentVariables: ["GREETING=hi from the spec"]
                Resources:
                  CPU: 250m
                  Memory: 64Mb
            """
        let file = try Paths.temporaryDirectory("cod-docker-spec").appendingPathComponent("job.yaml")
        try Data(spec.utf8).write(to: file)
        let run = try await stack.cod("job", "run", file.path)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("partition 0 of 2") && run.stdout.contains("partition 1 of 2"), "\(run.stdout)")
        #expect(run.stdout.contains("hi from the spec"))
    }

    @Test func memoryLimitKillsWithAnOutOfMemoryReason() async throws {
        let stack = try await EngineStack.shared.get()
        // Doubling a string 40 times asks for a terabyte; the 32 MB limit stops it.
        let run = try await stack.cod(
            "docker", "run", "--memory", "32Mb", image, "--", "awk", #"BEGIN { s = "x"; for (i = 0; i < 40; i++) s = s s; print length(s) }"#)
        #expect(run.status != 0)
        #expect(run.stderr.contains("out of memory"), "\(run.stdout)\n\(run.stderr)")
        #expect(run.stderr.contains("Resources.Memory"))
    }

    @Test func timeoutStopsAndRemovesTheContainer() async throws {
        let stack = try await EngineStack.shared.get()
        let run = try await stack.cod("docker", "run", "--id-only", "--timeout", "2", image, "--", "sleep", "300")
        #expect(run.status != 0)
        #expect(run.stderr.contains("timed out after 2s"), "\(run.stderr)")
        let id = jobID(run)
        #expect(id.hasPrefix("j-"))
        let left = try await PodmanService.podman(["ps", "-a", "-q", "--filter", "label=io.cod.job=\(id)"])
        #expect(left.stdout.isEmpty, "\(left.stdout)")
    }

    @Test func cancellationStopsTheContainer() async throws {
        let stack = try await EngineStack.shared.get()
        let run = try await stack.cod("docker", "run", "--id-only", "--wait=false", image, "--", "sleep", "300")
        let id = jobID(run)
        try await waitForExecution(stack, id, state: .running)
        // The container is there, labelled with its job.
        var running = ""
        for _ in 0..<100 where running.isEmpty {
            running = try await PodmanService.podman(["ps", "-q", "--filter", "label=io.cod.job=\(id)"]).stdout
            if running.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(!running.isEmpty)
        let stop = try await stack.cod("job", "stop", id)
        #expect(stop.status == 0, "\(stop.stderr)")
        var left = "?"
        for _ in 0..<100 where !left.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            left = try await PodmanService.podman(["ps", "-a", "-q", "--filter", "label=io.cod.job=\(id)"]).stdout
        }
        #expect(left.isEmpty, "the stopped job's container is still there: \(left)")
        #expect(try await describe(stack, id).job.state.stateType == .stopped)
    }

    /// A container sees its inputs and outputs, never the node's or the orchestrator's keys.
    @Test func aContainerCannotReadTheNodesKeys() async throws {
        let stack = try await EngineStack.shared.get()
        let keys = ["compute-0/node.key", "compute-0/api.key", "orchestrator/admin.key", "orchestrator/orchestrator.key"]
            .map { stack.dataDirectory.appendingPathComponent($0).path }
        #expect(keys.allSatisfy { FileManager.default.fileExists(atPath: $0) })
        let probe = keys.map { "if cat '\($0)' >/dev/null 2>&1; then echo read:\($0); else echo denied:\($0); fi" }.joined(separator: "; ")
        let run = try await stack.cod("docker", "run", image, "--", "sh", "-c", probe)
        #expect(run.status == 0, "\(run.stderr)")
        for key in keys { #expect(run.stdout.contains("denied:\(key)"), "\(run.stdout)") }
    }

    @Test func noNetworkByDefaultAndForbiddenNetworksAreNotPlaced() async throws {
        let stack = try await EngineStack.shared.get()
        let probe = "if wget -q -T 3 -O /dev/null http://127.0.0.1:\(stack.port)/api/v1/agent/alive; then echo reached; else echo unreachable; fi; ls /sys/class/net"
        let run = try await stack.cod("docker", "run", image, "--", "sh", "-c", probe)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("unreachable"), "\(run.stdout)")
        #expect(!run.stdout.contains("eth0"))
        // The node allows only None: a job asking for Host is refused, with the reason.
        let host = try await stack.cod("docker", "run", "--network", "host", image, "--", "true")
        #expect(host.status != 0)
        #expect(host.stderr.contains("network host not allowed (allows none)"), "\(host.stderr)")
    }

    @Test func missingImagesAndBadCommandsFailClearly() async throws {
        let stack = try await EngineStack.shared.get()
        let absent = try await stack.cod("docker", "run", "localhost/cod-test/absent:1.0", "--", "true")
        #expect(absent.status != 0)
        #expect(absent.stderr.contains("cannot pull image localhost/cod-test/absent:1.0"), "\(absent.stderr)")
        let missing = try await stack.cod("docker", "run", image, "--", "no-such-program")
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("could not start") && missing.stderr.contains("no-such-program"), "\(missing.stderr)")
        // GPUs: this node has none, and says so.
        let gpu = try await stack.cod("docker", "run", "--gpu", "1", image, "--", "true")
        #expect(gpu.stderr.contains("job needs 1 GPU; the node has none"), "\(gpu.stderr)")
    }
}

@Suite("Process engine (bubblewrap sandbox)", .serialized)
struct ProcessEngineTests {
    /// A year-like log of sensor lines, some near Lisbon (38.72..38.74, -9.13..-9.17).
    static func weatherLog() -> String {
        var lines: [String] = []
        var generator = SplitMix64(seed: 42)
        for hour in 0..<2000 {
            let nearLisbon = generator.next() % 10 == 0
            let lat = nearLisbon ? 38.72 + Double(generator.next() % 200) / 10_000 : 30 + Double(generator.next() % 200_000) / 10_000
            let lon = nearLisbon ? -9.13 - Double(generator.next() % 400) / 10_000 : -20 + Double(generator.next() % 200_000) / 10_000
            let rain = Double(generator.next() % 50) / 10
            lines.append(String(format: "2025-01-%02dT%02d:00 %.4f,%.4f temp=%.1f pressure=1013 rain=%.1f", hour / 24 % 28 + 1, hour % 24, lat, lon, 15.0, rain))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func sedGrepAwkLogFiltersOverContentByCID() async throws {
        let stack = try await EngineStack.shared.get()
        let folder = try Paths.temporaryDirectory("cod-logs")
        let log = Self.weatherLog()
        try Data(log.utf8).write(to: folder.appendingPathComponent("log.txt"))
        let add = try await stack.cod("data", "add", "-q", folder.path)
        #expect(add.status == 0, "\(add.stderr)")
        let cid = add.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // The seed's filter: readings within a box around Lisbon.
        let pattern = try Regex(#"38\.7[2-4]..,-9\.1[3-7].."#)
        let expected = log.split(separator: "\n").filter { $0.contains(pattern) }
        #expect(expected.count > 50)
        let sed = try await stack.cod("exec", "--id-only", "-i", "ipfs://\(cid)", "--", "sed", "-n", "/38.7[2-4]..,-9.1[3-7]../p", "/inputs/log.txt")
        #expect(sed.status == 0, "\(sed.stderr)\n\(stack.logText.suffix(3000))")
        let output = try await results(stack, jobID(sed))
        #expect(text(output, "stdout") == expected.joined(separator: "\n") + "\n")

        let grep = try await stack.cod("exec", "-i", "ipfs://\(cid)", "--", "grep", "-c", "rain=0.0", "/inputs/log.txt")
        #expect(grep.stdout.contains("\(log.split(separator: "\n").filter { $0.hasSuffix("rain=0.0") }.count)\n"), "\(grep.stdout)")

        let total = log.split(separator: "\n").compactMap { Double($0.split(separator: "=").last!) }.reduce(0, +)
        let awk = try await stack.cod(
            "exec", "-i", "ipfs://\(cid)", "--", "awk", "-F", "rain=", "{ s += $2 } END { printf \"%.1f\\n\", s }", "/inputs/log.txt")
        #expect(awk.stdout.contains(String(format: "%.1f\n", total)), "\(awk.stdout)")
    }

    @Test func writesOutsideOutputsAndNetworkAreRefused() async throws {
        let stack = try await EngineStack.shared.get()
        let input = try Paths.temporaryDirectory("cod-sandbox-in").appendingPathComponent("data.txt")
        try Data("input\n".utf8).write(to: input)
        // The node's and the orchestrator's keys exist on the host, and a job cannot read them.
        let nodeKey = stack.dataDirectory.appendingPathComponent("compute-0/node.key")
        let nodeAPIKey = stack.dataDirectory.appendingPathComponent("compute-0/api.key")
        let adminKey = stack.dataDirectory.appendingPathComponent("orchestrator/admin.key")
        #expect([nodeKey, nodeAPIKey, adminKey].allSatisfy { FileManager.default.fileExists(atPath: $0.path) })
        let script = """
            try() { if eval "$2" 2>/dev/null; then echo "$1:allowed"; else echo "$1:denied"; fi; }
            try usr 'echo x > /usr/cod-x'
            try etc 'echo x > /etc/cod-x'
            try input 'echo x > /inputs/data.txt'
            try root 'echo x > /cod-x'
            try shadow 'cat /etc/shadow'
            try home 'ls /root'
            try outputs 'echo x > /outputs/ok.txt'
            try tmp 'echo x > /tmp/ok.txt'
            try network 'python3 -c "import urllib.request; urllib.request.urlopen(\\"http://127.0.0.1:\(stack.port)/api/v1/agent/alive\\", timeout=3)"'
            try interfaces 'test -e /sys/class/net/eth0'
            try nodekey 'cat \(nodeKey.path)'
            try nodeapikey 'cat \(nodeAPIKey.path)'
            try adminkey 'cat \(adminKey.path)'
            """
        let run = try await stack.cod("exec", "--id-only", "-i", "\(input.path):/inputs/data.txt", "--", "sh", "-c", script)
        #expect(run.status == 0, "\(run.stderr)")
        let output = try await results(stack, jobID(run))
        let stdout = text(output, "stdout")
        for denied in ["usr", "etc", "input", "root", "shadow", "home", "network", "interfaces", "nodekey", "nodeapikey", "adminkey"] {
            #expect(stdout.contains("\(denied):denied"), "\(denied): \(stdout)")
        }
        #expect(stdout.contains("outputs:allowed") && stdout.contains("tmp:allowed"), "\(stdout)")
        #expect(text(output, "outputs/ok.txt") == "x\n")
        #expect(!FileManager.default.fileExists(atPath: "/usr/cod-x"))
        #expect(try String(contentsOf: input, encoding: .utf8) == "input\n")
    }

    @Test func forkBombIsContainedAndKilled() async throws {
        let stack = try await EngineStack.shared.get()
        let marker = "cod-bomb-\(UUID().uuidString.prefix(8))"
        // Each copy forks two more forever; the sandbox's process limit stops the growth (the
        // memory allowance is ample, so that limit is the one that bites) and the deadline kills
        // every copy.
        // The bomb starts in a background subshell and the first shell then spins in a builtin
        // loop: it never forks once the limit is near (dash exits when a fork fails, which
        // under load could end the job early), so the deadline is what ends it.
        let bomb = "(b() { b | b & }; b) & while :; do :; done # \(marker)"
        let run = try await stack.cod("exec", "--timeout", "5", "--memory", "1Gb", "--", "sh", "-c", bomb)
        #expect(run.status != 0)
        #expect(run.stderr.contains("timed out after 5s"), "\(run.stderr)")
        var left = processesWith(marker: marker)
        for _ in 0..<50 where !left.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            left = processesWith(marker: marker)
        }
        #expect(left.isEmpty, "processes survived: \(left.prefix(5))")
        // The node is fine afterwards.
        let after = try await stack.cod("exec", "--", "echo", "still here")
        #expect(after.stdout.contains("still here"), "\(after.stderr)")
    }

    @Test func infiniteLoopIsKilledAtItsTimeoutAndCancellationWorks() async throws {
        let stack = try await EngineStack.shared.get()
        let marker = "cod-loop-\(UUID().uuidString.prefix(8))"
        let run = try await stack.cod("exec", "--timeout", "2", "--", "sh", "-c", "while :; do :; done # \(marker)")
        #expect(run.stderr.contains("timed out after 2s"), "\(run.stderr)")
        try await Task.sleep(for: .milliseconds(300))
        #expect(processesWith(marker: marker).isEmpty)

        let cancelMarker = "cod-cancel-\(UUID().uuidString.prefix(8))"
        let started = try await stack.cod("exec", "--id-only", "--wait=false", "--", "sh", "-c", "sleep 300 # \(cancelMarker)")
        let id = jobID(started)
        try await waitForExecution(stack, id, state: .running)
        let stop = try await stack.cod("job", "stop", id)
        #expect(stop.status == 0)
        var left = processesWith(marker: cancelMarker)
        for _ in 0..<50 where !left.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            left = processesWith(marker: cancelMarker)
        }
        #expect(left.isEmpty, "\(left)")
    }

    @Test func memoryLimitInTheSandbox() async throws {
        let stack = try await EngineStack.shared.get()
        let run = try await stack.cod(
            "exec", "--memory", "64Mb", "--", "python3", "-c", "b = bytearray(512 * 1024 * 1024); print(len(b))")
        #expect(run.status != 0)
        #expect(run.stderr.contains("out of memory") || run.stderr.contains("MemoryError"), "\(run.stdout)\n\(run.stderr)")
    }

    @Test func pythonScriptOverEveryInputFileWithCachedRequirements() async throws {
        let stack = try await EngineStack.shared.get()
        let folder = try Paths.temporaryDirectory("cod-python")
        let images = folder.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images.appendingPathComponent("more"), withIntermediateDirectories: true)
        // Three 64x48 greyscale PGM images.
        for (index, name) in ["a.pgm", "b.pgm", "more/c.pgm"].enumerated() {
            var bytes = Array("P5\n64 48\n255\n".utf8)
            bytes += (0..<(64 * 48)).map { UInt8(($0 + index * 7) % 256) }
            try Data(bytes).write(to: images.appendingPathComponent(name))
        }
        let script = folder.appendingPathComponent("downscale.py")
        try Data("""
            import os, sys

            def downscale(data, width, height):
                return bytes(data[y * 2 * width + x * 2] for y in range(height // 2) for x in range(width // 2))

            source, out = sys.argv[1], sys.argv[2]
            with open(source, "rb") as f:
                magic, size, depth, pixels = f.read().split(b"\\n", 3)
            width, height = map(int, size.split())
            small = downscale(pixels, width, height)
            name = os.path.splitext(os.path.basename(source))[0] + "-small.pgm"
            with open(os.path.join(out, name), "wb") as f:
                f.write(b"P5\\n%d %d\\n255\\n" % (width // 2, height // 2) + small)
            print(f"{source}: {width}x{height} -> {width // 2}x{height // 2}, venv={os.environ.get('VIRTUAL_ENV', '')}")
            """.utf8).write(to: script)
        let requirements = folder.appendingPathComponent("requirements.txt")
        try Data("# standard library only\n".utf8).write(to: requirements)
        let add = try await stack.cod("data", "add", "-q", images.path)
        let cid = add.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let run = try await stack.cod("python", "run", "--id-only", script.path, "-r", requirements.path, "-i", "ipfs://\(cid)")
        #expect(run.status == 0, "\(run.stderr)\n\(stack.logText.suffix(2000))")
        let id = jobID(run)
        let output = try await results(stack, id)
        let stdout = text(output, "stdout")
        #expect(stdout.contains("/inputs/a.pgm: 64x48 -> 32x24"), "\(stdout)\n\(text(output, "stderr"))")
        #expect(stdout.contains("/inputs/more/c.pgm: 64x48 -> 32x24"))
        #expect(stdout.contains("venv=/"))
        let small = try Data(contentsOf: output.appendingPathComponent("outputs/more/c-small.pgm"))
        #expect(small.count == "P5\n32 24\n255\n".utf8.count + 32 * 24)
        #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("outputs/a-small.pgm").path))
        // The results are one CID.
        let job = try await describe(stack, id)
        #expect(job.executions?.items.first?.publishedResult.params["CID"]?.stringValue?.hasPrefix("bafy") == true)
        // The same requirements reuse the node's environment.
        let again = try await stack.cod("python", "run", script.path, "-r", requirements.path, "-i", "ipfs://\(cid)")
        #expect(again.status == 0)
        let environments = try FileManager.default.contentsOfDirectory(
            atPath: stack.dataDirectory.appendingPathComponent("compute-0/python").path
        ).filter { !$0.hasSuffix(".log") }
        #expect(environments.count == 1, "\(environments)")

        // The same script in a Python container (docker engine).
        let image = try await PodmanService.shared.pythonImage()
        let docker = try await stack.cod(
            "python", "run", "--id-only", "--engine", "docker", "--image", image, script.path, "-i", "ipfs://\(cid)")
        #expect(docker.status == 0, "\(docker.stderr)")
        let dockerOutput = try await results(stack, jobID(docker))
        #expect(text(dockerOutput, "stdout").contains("/inputs/more/c.pgm: 64x48 -> 32x24"), "\(text(dockerOutput, "stderr"))")
        #expect(try Data(contentsOf: dockerOutput.appendingPathComponent("outputs/more/c-small.pgm")) == small)
    }
}

@Suite("Engine probing and orphan cleanup")
struct EngineProbeTests {
    @Test func aDockerDaemonThatAppearsLaterIsUsedWithoutARestart() async throws {
        let host = try await PodmanService.shared.dockerHost()
        let folder = try Paths.temporaryDirectory("cod-late-docker")
        let socket = folder.appendingPathComponent("docker.sock")
        let stack = try await DevstackProcess.start(
            dataDirectory: folder.appendingPathComponent("data"), computes: 1, extraArguments: ["--docker-host", "unix://\(socket.path)"])
        defer { stack.stop() }
        #expect(try await !stack.cod("node", "list", "--output", "json").stdout.contains("\"docker\""))
        // The daemon shows up at that address.
        try FileManager.default.createSymbolicLink(atPath: socket.path, withDestinationPath: String(host.dropFirst("unix://".count)))
        var advertised = false
        for _ in 0..<300 where !advertised {
            advertised = try await stack.cod("node", "list", "--output", "json").stdout.contains("\"docker\"")
            if !advertised { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(advertised, "\(stack.logText.suffix(2000))")
        let run = try await stack.cod("docker", "run", PodmanService.image, "--", "echo", "found it")
        #expect(run.stdout.contains("found it"), "\(run.stderr)")
    }

    @Test func nodesAdvertiseOnlyWhatTheyHaveAndRemoveOrphans() async throws {
        let host = try await PodmanService.shared.dockerHost()
        let directory = try Paths.temporaryDirectory("cod-probe")
        // A node told to use a socket where nothing listens offers no docker engine, and a
        // docker job gets the reason.
        let noDocker = try await DevstackProcess.start(
            dataDirectory: directory, computes: 1, extraArguments: ["--docker-host", "unix:///nonexistent/docker.sock"])
        let nodes = try await noDocker.cod("node", "list", "--output", "json")
        #expect(nodes.stdout.contains("\"process\"") && nodes.stdout.contains("\"wasm\""), "\(nodes.stdout)")
        #expect(!nodes.stdout.contains("\"docker\""))
        let refused = try await noDocker.cod("docker", "run", PodmanService.image, "--", "true")
        #expect(refused.stderr.contains("engine docker not supported (has wasm, process)"), "\(refused.stderr)")
        let nodeID = try String(contentsOf: directory.appendingPathComponent("compute-0/node-id"), encoding: .utf8)
        noDocker.stop()

        // A container this node left behind (as if it was killed mid-run) is removed when it
        // starts with the Docker API available.
        let orphan = try await PodmanService.podman([
            "create", "--label", "io.cod.node=\(nodeID)", "--ulimit", "nofile=1024:1024", PodmanService.image, "sleep", "300",
        ])
        #expect(orphan.status == 0, "\(orphan.stderr)")
        let withDocker = try await DevstackProcess.start(
            dataDirectory: directory, computes: 1,
            extraArguments: ["--docker-host", host, "--docker-pull", "never", "--allow-network", "host"])
        defer { withDocker.stop() }
        // The restarted orchestrator lists the node from its store until the node reconnects
        // with its new report: wait for that.
        var list = try await withDocker.cod("node", "list", "--output", "json")
        for _ in 0..<200 where !list.stdout.contains("\"docker\"") {
            try await Task.sleep(for: .milliseconds(100))
            list = try await withDocker.cod("node", "list", "--output", "json")
        }
        #expect(list.stdout.contains("\"docker\""), "\(list.stdout)")
        let left = try await PodmanService.podman(["ps", "-a", "-q", "--filter", "label=io.cod.node=\(nodeID)"])
        #expect(left.stdout.isEmpty, "orphan still there: \(left.stdout)\n\(withDocker.logText)")
        // An air-gapped node (pull policy never) runs what it has and names what it lacks.
        let present = try await withDocker.cod("docker", "run", PodmanService.image, "--", "echo", "local image")
        #expect(present.stdout.contains("local image"), "\(present.stderr)")
        let absent = try await withDocker.cod("docker", "run", "localhost/cod-test/absent:2", "--", "true")
        #expect(absent.stderr.contains("image localhost/cod-test/absent:2 is not on this node and its pull policy is never"), "\(absent.stderr)")
        // This node allows the host's network: jobs that ask for it reach the host's loopback.
        let url = "http://127.0.0.1:\(withDocker.port)/api/v1/agent/alive"
        let container = try await withDocker.cod("docker", "run", "--network", "host", PodmanService.image, "--", "wget", "-q", "-O", "-", url)
        #expect(container.stdout.contains("OK"), "\(container.stdout)\n\(container.stderr)")
        let process = try await withDocker.cod(
            "exec", "--network", "host", "--", "python3", "-c", "import urllib.request; print(urllib.request.urlopen('\(url)').read().decode())")
        #expect(process.stdout.contains("OK"), "\(process.stdout)\n\(process.stderr)")
    }
}
