@testable import CodTestKit
@testable import ComputeNode
import APIClient
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Models
import Testing
import Wire

/// Jobs that start jobs, through the real CLI, API and compute node: the spawn folder, the
/// execution's own key, the parent's limits, and a stopped parent taking its tree with it.
@Suite("Job trees (separate processes)", .serialized)
struct JobTreeTests {
    /// A process-engine job running `script` with `sh -c`.
    static func job(_ name: String, _ script: String, cpu: String = "0.05", children: String? = nil, extra: String = "") -> String {
        let arguments = try! String(decoding: JSONEncoder().encode(["-c", script]), as: UTF8.self)
        return """
            {"Name": "\(name)", "Type": "batch"\(children.map { ", \"Children\": \($0)" } ?? "")\(extra),
             "Tasks": [{"Name": "main", "Engine": {"Type": "process", "Params": {"Command": "sh", "Arguments": \(arguments)}},
               "Resources": {"CPU": "\(cpu)", "Memory": "32Mi"}}]}
            """
    }

    static func start(_ cluster: ServeCluster) async throws -> [Process] {
        let processes = [try cluster.orchestrator(), try cluster.compute(0, ["--engines", "process,wasm", "--heartbeat-interval", "0.5"])]
        try await cluster.waitForNodes(1)
        return processes
    }

    static func submit(_ cluster: ServeCluster, _ spec: String) async throws -> String {
        let file = cluster.base.appendingPathComponent("job-\(UUID().uuidString.prefix(8)).json")
        try Data(spec.utf8).write(to: file)
        let run = try await cluster.cli("job", "run", file.path, "--id-only", "--wait=false")
        guard run.status == 0 else { throw TestFailure("job run failed: \(run.stderr)") }
        return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// What a running job's first execution printed so far, read where its node keeps it.
    static func output(_ cluster: ServeCluster, _ jobID: String, containing text: String) async throws -> String {
        for _ in 0..<300 {
            if let execution = try await cluster.state(jobID)?.executions?.items.first {
                let file = cluster.base.appendingPathComponent("c0/compute/executions/\(execution.id)/stdout")
                if let printed = try? String(contentsOf: file, encoding: .utf8), printed.contains(text) { return printed }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("job \(jobID) printed no \(text)")
    }

    /// The key a running job printed as `key=...`.
    static func key(_ cluster: ServeCluster, _ jobID: String) async throws -> String {
        let printed = try await output(cluster, jobID, containing: "key=cx_")
        let line = try #require(printed.split(separator: "\n").first { $0.hasPrefix("key=") })
        return String(line.dropFirst(4))
    }

    static func status(_ port: Int, _ token: String, _ path: String) async throws -> Int {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/api/v1/orchestrator/\(path)")!)
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    /// A parent that takes the whole CPU of the only node spawns a child through its spawn
    /// folder and waits for it: the parent lends its CPU while it waits, so the child runs.
    @Test func aParentOnAFullNodeSpawnsAChildAndWaitsForIt() async throws {
        let cluster = try ServeCluster()
        let processes = try await Self.start(cluster)
        defer {
            for process in processes where process.isRunning { process.interrupt() }
        }
        let child = Self.job("thumb", "echo made-by-the-child > /outputs/x; echo child-ran", cpu: "0.5", extra: #", "Labels": {"k": "v"}"#)
            .replacingOccurrences(of: #""Resources""#, with: #""ResultPaths": [{"Name": "outputs", "Path": "/outputs"}], "Resources""#)
        let script = """
            printf '%s' '\(child)' > /cod/spawn/thumb.json.tmp && mv /cod/spawn/thumb.json.tmp /cod/spawn/thumb.json
            i=0
            while ! grep -q '"State":"Completed"' /cod/spawn/thumb.status 2>/dev/null; do
              i=$((i+1)); [ $i -gt 600 ] && { cat /cod/spawn/thumb.status; exit 3; }; sleep 0.1
            done
            cat /cod/spawn/thumb.status
            cat /cod/spawn/thumb.result/outputs/x >&2
            """
        // The node offers 1.6 CPUs (80% of two cores): the parent takes them all.
        let parent = try await Self.submit(cluster, Self.job("parent", script, cpu: "1.6", children: #"{"MaxJobs": 1}"#))
        let ended = try await cluster.waitForEnd(parent, seconds: 90)
        let stdout = ended.executions?.items.first?.runOutput?.stdout ?? ""
        #expect(ended.job.state.stateType == .completed, "\(ended.job.state.message) \(stdout)")
        let status = try JSONDecoder().decode(SpawnStatus.self, from: Data(stdout.utf8))
        #expect(status.state == "Completed" && status.resultCIDs?.count == 1, "\(stdout)")
        let stderr = ended.executions?.items.first?.runOutput?.stderr ?? ""
        #expect(stderr == "made-by-the-child\n", "the child's result is in the parent's spawn folder: \(stderr)")
        #expect(status.resultPath == "/cod/spawn/thumb.result")

        // The child is linked to its parent, named under it, and listed by the tree.
        let childID = try #require(status.jobID)
        let child0 = try #require(try await cluster.state(childID))
        #expect(child0.job.parentJobID == parent && child0.job.parentExecutionID == ended.executions?.items.first?.id)
        #expect(child0.job.name == "parent/thumb" && child0.job.owner == ended.job.owner)
        let children = try await CodClient(baseURL: "127.0.0.1:\(cluster.port)", token: cluster.adminKey).children(parent)
        #expect(children.map(\.id) == [childID])
        let tree = try await cluster.cli("job", "tree", parent)
        #expect(tree.status == 0 && tree.stdout.contains("└─ \(shortID(childID))  parent/thumb  Completed"), "\(tree.stdout)")
        let got = try await cluster.cli("job", "get", childID, "--output-dir", cluster.base.appendingPathComponent("got").path)
        #expect(got.status == 0, "\(got.stderr)")
        let made = try? String(contentsOf: cluster.base.appendingPathComponent("got/outputs/x"), encoding: .utf8)
        #expect(made == "made-by-the-child\n")

        // A spec that is not a job is refused in its status, and nothing is submitted.
        let broken = try await Self.submit(cluster, Self.job("broken", """
            echo '{"Tasks": 12}' > /cod/spawn/bad.json
            while ! grep -q Refused /cod/spawn/bad.status 2>/dev/null; do sleep 0.1; done
            cat /cod/spawn/bad.status
            ln -s /etc/shadow /cod/spawn/evil.json
            while [ ! -e /cod/spawn/evil.status ]; do sleep 0.1; done
            cat /cod/spawn/evil.status
            """, children: "{}"))
        let refused = try await cluster.waitForEnd(broken, seconds: 60)
        let said = refused.executions?.items.first?.runOutput?.stdout ?? ""
        #expect(said.contains("\"Name\":\"bad\"") && said.contains("Refused"), "\(said)")
        #expect(said.contains("\"Name\":\"evil\"") && said.contains("a link is not followed"), "\(said)")
        #expect(try await CodClient(baseURL: "127.0.0.1:\(cluster.port)", token: cluster.adminKey).children(broken).isEmpty)

        // A WASM parent, with no network and no credentials, spawns through the same folder.
        let module = try Data(contentsOf: URL(fileURLWithPath: try Paths.fixture("spawn"))).base64EncodedString()
        let wasm = try await Self.submit(cluster, """
            {"Name": "wasm-parent", "Type": "batch", "Children": {},
             "Tasks": [{"Name": "main", "Engine": {"Type": "wasm", "Params": {"EntryModule": "/app/m.wasm"}},
               "InputSources": [{"Target": "/app/m.wasm", "Source": {"Type": "inline", "Params": {"URL": "data:application/wasm;base64,\(module)"}}}]}]}
            """)
        let wasmEnded = try await cluster.waitForEnd(wasm, seconds: 90)
        let wasmSaid = wasmEnded.executions?.items.first?.runOutput?.stdout ?? ""
        #expect(wasmEnded.job.state.stateType == .completed && wasmSaid.contains("\"State\":\"Completed\""), "\(wasmEnded.job.state.message) \(wasmSaid)")
        let wasmChild = try #require(try await CodClient(baseURL: "127.0.0.1:\(cluster.port)", token: cluster.adminKey).children(wasm).first)
        let echoed = try await cluster.waitForEnd(wasmChild.id)
        #expect(echoed.executions?.items.first?.runOutput?.stdout == "from-a-wasm-parent\n")
    }

    /// A hostile parent's spawn folder: links where the node writes a status or copies a
    /// result, a spec over the size limit, and more specs than MaxJobs. Nothing on the host is
    /// written through, and every spec past the limit is refused in its status.
    @Test func aHostileSpawnFolderNeverReachesTheHost() async throws {
        let cluster = try ServeCluster()
        let processes = try await Self.start(cluster)
        defer {
            for process in processes where process.isRunning { process.interrupt() }
        }
        let victim = cluster.base.appendingPathComponent("victim.txt")
        try Data("untouched\n".utf8).write(to: victim)
        let victimFolder = cluster.base.appendingPathComponent("victim-folder")
        try FileManager.default.createDirectory(at: victimFolder, withIntermediateDirectories: true)
        let child = Self.job("c", "echo hi").replacingOccurrences(of: "\n", with: " ")
        let script = """
            ln -s \(victim.path) /cod/spawn/a.status
            ln -s \(victimFolder.path) /cod/spawn/a.result
            printf '%s' '\(child)' > /cod/spawn/a.json
            head -c 1100000 /dev/zero | tr '\\0' ' ' > /cod/spawn/huge.json
            for i in $(seq 1 12); do printf '%s' '\(child)' > /cod/spawn/many-$i.json; done
            until [ -f /cod/spawn/huge.status ] && [ $(grep -l -e Refused -e Completed /cod/spawn/*.status 2>/dev/null | wc -l) -ge 14 ]; do sleep 0.2; done
            grep -h Refused /cod/spawn/*.status
            cat /cod/spawn/a.status
            """
        let parent = try await Self.submit(cluster, Self.job("hostile", script, children: #"{"MaxJobs": 10}"#))
        let ended = try await cluster.waitForEnd(parent, seconds: 120)
        let said = ended.executions?.items.first?.runOutput?.stdout ?? ""
        #expect(ended.job.state.stateType == .completed, "\(ended.job.state.message) \(said)")
        #expect(try String(contentsOf: victim, encoding: .utf8) == "untouched\n", "a status was written through a link")
        #expect(try FileManager.default.contentsOfDirectory(atPath: victimFolder.path).isEmpty, "a result was copied through a link")
        #expect(said.contains("\"Name\":\"huge\"") && said.contains("a spec may be at most"), "\(said)")
        let statuses = said.split(separator: "\n").compactMap { try? JSONDecoder().decode(SpawnStatus.self, from: Data($0.utf8)) }
        #expect(statuses.filter { $0.message.contains("Children.MaxJobs") }.count == 3, "MaxJobs: 10 of 13 specs become jobs: \(said)")
        let linked = try #require(statuses.first { $0.name == "a" })
        #expect(linked.state == "Completed" && linked.resultPath == nil && linked.message.contains("a.result exists"), "\(said)")
        #expect(try await CodClient(baseURL: "127.0.0.1:\(cluster.port)", token: cluster.adminKey).children(parent).count == 10)
    }

    /// The execution's key: its parent's limits refuse the 51st child and depth 3 by field, it
    /// reaches its own tree only (not a sibling), stopping the parent stops its 20 running
    /// children within 2 s, and the key dies with the parent.
    @Test func limitsScopedKeysAndStoppingTheTree() async throws {
        let cluster = try ServeCluster()
        let processes = try await Self.start(cluster)
        defer {
            for process in processes where process.isRunning { process.interrupt() }
        }
        // Limits out of range are refused by field, and no job is stored.
        let file = cluster.base.appendingPathComponent("bad-limits.json")
        try Data(Self.job("bad-limits", "true", children: #"{"MaxDepth": 11, "MaxJobs": -1, "Budget": -3}"#).utf8).write(to: file)
        let refused = try await cluster.cli("job", "run", file.path, "--id-only")
        #expect(refused.status != 0, "\(refused.stdout)")
        for field in ["Children.MaxDepth", "Children.MaxJobs", "Children.Budget"] { #expect(refused.stderr.contains(field), "\(field): \(refused.stderr)") }
        let listed = try await cluster.cli("job", "list", "--output", "json")
        #expect(!listed.stdout.contains("bad-limits"))

        let printKeyAndWait = "echo key=$COD_API_KEY; sleep 121"
        let parent = try await Self.submit(cluster, Self.job("root", printKeyAndWait, children: #"{"MaxJobs": 50, "MaxDepth": 2}"#))
        let rootKey = try await Self.key(cluster, parent)
        let root = CodClient(baseURL: "127.0.0.1:\(cluster.port)", token: rootKey)

        // A user's claim to be someone's child is not taken: the orchestrator links children.
        var claim = try JobSpecTestSupport.parse(Self.job("claims", "true"))
        claim.parentJobID = "j-not-mine"
        let claimed = try await CodClient(baseURL: "127.0.0.1:\(cluster.port)", token: cluster.adminKey).submit(claim)
        #expect(try await cluster.state(claimed.jobID)?.job.parentJobID == nil)

        // 20 children that run, the first of which may start its own; then 30 that wait for a
        // node with a label nobody has.
        var running: [String] = []
        for index in 0..<20 {
            let spec = Self.job("sleeper-\(index)", printKeyAndWait, children: index == 0 ? "{}" : nil)
            running.append(try await root.submit(try JobSpecTestSupport.parse(spec)).jobID)
        }
        for index in 0..<30 {
            let spec = Self.job("waiter-\(index)", "true", extra: #", "Constraints": [{"Key": "nowhere", "Operator": "=", "Values": ["x"]}]"#)
            _ = try await root.submit(try JobSpecTestSupport.parse(spec))
        }
        await #expect {
            try await root.submit(try JobSpecTestSupport.parse(Self.job("one-too-many", "true")))
        } throws: { error in
            (error as? CodError)?.message.contains("Children.MaxJobs") == true
        }

        // The first child's key reaches it and what it starts, never its siblings.
        let childKey = try await Self.key(cluster, running[0])
        #expect(try await Self.status(cluster.port, childKey, "jobs/\(running[0])") == 200)
        #expect(try await Self.status(cluster.port, childKey, "jobs/\(running[1])") == 403)
        #expect(try await Self.status(cluster.port, childKey, "jobs/\(running[1])/results") == 403)
        #expect(try await Self.status(cluster.port, childKey, "jobs") == 403, "listing every job")
        #expect(try await Self.status(cluster.port, childKey, "nodes") == 403)
        #expect(try await Self.status(cluster.port, rootKey, "jobs/\(running[1])") == 200, "a parent reads its children")
        let grandchild = try await CodClient(baseURL: "127.0.0.1:\(cluster.port)", token: childKey)
            .submit(try JobSpecTestSupport.parse(Self.job("deeper", printKeyAndWait, children: #"{"MaxDepth": 5}"#))).jobID
        let grandchildKey = try await Self.key(cluster, grandchild)
        await #expect {
            try await CodClient(baseURL: "127.0.0.1:\(cluster.port)", token: grandchildKey)
                .submit(try JobSpecTestSupport.parse(Self.job("too-deep", "true")))
        } throws: { error in
            (error as? CodError)?.message.contains("Children.MaxDepth") == true
        }

        // Every sleeper runs; stopping the root stops the whole tree within 2 s.
        for id in running { try await cluster.waitForRunning(id) }
        var runningNow = 0
        for id in running where try await cluster.state(id)?.executions?.items.contains(where: { $0.computeState.stateType == .running }) == true {
            runningNow += 1
        }
        #expect(runningNow == 20)
        let sleeping = try await Run.async(["/bin/sh", "-c", "pgrep -f 'sleep 12[1]' | wc -l"])
        #expect(Int(sleeping.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 >= 22, "root, 20 children and a grandchild sleep")
        let stopped = Date()
        let stop = try await cluster.cli("job", "stop", parent)
        #expect(stop.status == 0, "\(stop.stderr)")
        var unfinished = running + [grandchild]
        while !unfinished.isEmpty, Date().timeIntervalSince(stopped) < 2 {
            var left: [String] = []
            for id in unfinished where try await cluster.state(id)?.job.state.stateType.isTerminal != true { left.append(id) }
            unfinished = left
        }
        #expect(unfinished.isEmpty, "still unfinished 2 s after the stop: \(unfinished)")
        #expect(try await cluster.state(grandchild)?.job.state.stateType == .stopped)

        // The keys died with their executions.
        #expect(try await Self.status(cluster.port, rootKey, "jobs/\(parent)") == 401)
        #expect(try await Self.status(cluster.port, childKey, "jobs/\(running[0])") == 401)
        // And the sleepers' processes are gone from the node.
        for _ in 0..<100 {
            let ps = try await Run.async(["/bin/sh", "-c", "pgrep -f 'sleep 12[1]' | wc -l"])
            if ps.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let left = try await Run.async(["/bin/sh", "-c", "pgrep -f 'sleep 12[1]' | wc -l"])
        #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }
}

/// What a spawn folder's `<name>.status` holds, as the node writes it.
typealias SpawnStatus = SpawnFolder.Child

enum JobSpecTestSupport {
    static func parse(_ text: String) throws -> Job { try JSONDecoder().decode(Job.self, from: Data(text.utf8)) }
}
