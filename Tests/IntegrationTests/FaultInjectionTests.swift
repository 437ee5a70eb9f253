@testable import CodTestKit
import Foundation
import Models
import Testing
import Wire

/// Processes on this machine whose environment holds `COD_EXECUTION_ID=<id>` (the sandboxed
/// program of that execution and its children).
func processes(ofExecution id: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    let needle = Array("COD_EXECUTION_ID=\(id)".utf8)
    return entries.compactMap { Int32($0) }.filter { pid in
        guard let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
        return environ.split(separator: 0).contains { Array($0) == needle }
    }
}

@Suite("Fault injection (separate processes)", .serialized)
struct FaultInjectionTests {
    /// A compute node freezes (SIGSTOP) mid-job: it turns suspect, then lost; its execution runs
    /// again on another node and the job completes once. When the node thaws it reconnects and is
    /// told to stop the execution it still runs, which was given up.
    @Test func frozenNodeIsSuspectThenLostAndItsStaleWorkIsStoppedWhenItReturns() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator(["--node-timeout", "4", "--heartbeat-interval", "0.5"])
        let computes = try (0..<2).map { try cluster.compute($0, ["--engines", "process", "--labels", "slot=\($0)"]) }
        defer {
            for process in computes { kill(process.processIdentifier, SIGCONT) }
            for process in [orchestrator] + computes where process.isRunning { process.interrupt() }
        }
        try await cluster.waitForNodes(2)
        let submitted = try await cluster.cli("exec", "--id-only", "--wait=false", "--", "sh", "-c", "sleep 25; echo finished")
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        var first: Execution?
        for _ in 0..<200 where first == nil {
            first = try await cluster.state(id)?.executions?.items.first { $0.computeState.stateType == .running }
            if first == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let running = try #require(first)
        let nodes = try await cluster.nodes()
        let slot = try #require(nodes.first { $0.info.nodeID == running.nodeID }?.info.labels["slot"].flatMap { Int($0) })
        let frozen = computes[slot]
        // The program is running in its sandbox on that node.
        for _ in 0..<100 where processes(ofExecution: running.id).isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!processes(ofExecution: running.id).isEmpty)

        kill(frozen.processIdentifier, SIGSTOP)
        var seen: [NodeLiveness] = []
        for _ in 0..<100 where seen.last != .lost {
            if let state = try await cluster.nodes().first(where: { $0.info.nodeID == running.nodeID })?.liveness, state != seen.last {
                seen.append(state)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(seen.contains(.suspect) && seen.last == .lost, "liveness went \(seen)")
        // The work moves to the other node while the frozen one's sandbox still runs it.
        var moved = false
        for _ in 0..<100 where !moved {
            moved = try await cluster.state(id)?.executions?.items.contains {
                $0.nodeID != running.nodeID && $0.computeState.stateType == .running
            } == true
            if !moved { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(moved)
        #expect(!processes(ofExecution: running.id).isEmpty)

        // Thawed, the node reconnects and stops the execution that was given up, long before
        // its program would have ended by itself.
        kill(frozen.processIdentifier, SIGCONT)
        var stopped = false
        for _ in 0..<100 where !stopped {
            stopped = processes(ofExecution: running.id).isEmpty
            if !stopped { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(stopped, "the stale execution kept running on the returning node")
        var healthy = false
        for _ in 0..<100 where !healthy {
            healthy = try await cluster.nodes().first { $0.info.nodeID == running.nodeID }?.liveness == .healthy
            if !healthy { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(healthy)

        let job = try await cluster.waitForEnd(id)
        #expect(job.job.state.stateType == .completed, "\(job.job.state)")
        let executions = job.executions?.items ?? []
        #expect(executions.filter { $0.computeState.stateType == .completed }.count == 1)
        #expect(executions.first { $0.id == running.id }?.computeState.stateType == .failed)
        let logs = try await cluster.cli("job", "logs", id)
        #expect(logs.stdout == "finished\n", "\(logs.stdout)")
    }
}

/// A network namespace joined to this one by a veth pair: `hostAddress` on this side,
/// `innerAddress` inside. Bringing the host side down cuts everything in it off.
final class VethNamespace: @unchecked Sendable {
    let name: String
    let hostInterface: String
    let hostAddress: String
    let innerAddress: String

    init() throws {
        let tag = String(UUID().uuidString.lowercased().prefix(6))
        let subnet = Int.random(in: 0...63) * 4
        name = "codft-\(tag)"
        hostInterface = "cvh\(tag)"
        hostAddress = "10.231.\(Int.random(in: 0...255)).\(subnet + 1)"
        innerAddress = hostAddress.split(separator: ".").dropLast().joined(separator: ".") + ".\(subnet + 2)"
        let inner = "cvn\(tag)"
        try Self.ip(["netns", "add", name])
        do {
            try Self.ip(["link", "add", hostInterface, "type", "veth", "peer", "name", inner])
            try Self.ip(["link", "set", inner, "netns", name])
            try Self.ip(["addr", "add", "\(hostAddress)/30", "dev", hostInterface])
            try Self.ip(["link", "set", hostInterface, "up"])
            try Self.ip(["netns", "exec", name, "ip", "addr", "add", "\(innerAddress)/30", "dev", inner])
            try Self.ip(["netns", "exec", name, "ip", "link", "set", inner, "up"])
            try Self.ip(["netns", "exec", name, "ip", "link", "set", "lo", "up"])
        } catch {
            remove()
            throw error
        }
    }

    func linkDown() throws { try Self.ip(["link", "set", hostInterface, "down"]) }
    func linkUp() throws { try Self.ip(["link", "set", hostInterface, "up"]) }

    func remove() {
        _ = try? Run.sync(["/usr/sbin/ip", "netns", "del", name])
        _ = try? Run.sync(["/usr/sbin/ip", "link", "del", hostInterface])
    }

    static func ip(_ arguments: [String]) throws {
        let result = try Run.sync(["/usr/sbin/ip"] + arguments)
        guard result.status == 0 else {
            throw TestFailure("ip \(arguments.joined(separator: " ")) failed (network namespaces need root and iproute2): \(result.stderr)")
        }
    }
}

@Suite("Fault injection: kill, restart and cut off mid-job (separate processes)", .serialized)
struct NetworkFaultTests {
    /// Six partitions spread over three compute nodes, one of them in its own network
    /// namespace. Mid-job: one node is killed (SIGKILL) and restarted, the namespace's link is
    /// brought down, and the orchestrator is killed and restarted. Every partition still
    /// completes exactly once, with its own output.
    @Test func killRestartAndCutOffMidJobStillCompletesEveryPartitionOnce() async throws {
        let net = try VethNamespace()
        defer { net.remove() }
        let cluster = try ServeCluster(host: net.hostAddress)
        let settings = ["--node-timeout", "4", "--heartbeat-interval", "0.5"]
        var orchestrator = try cluster.orchestrator(settings)
        func compute(_ index: Int, inNamespace: Bool = false) throws -> Process {
            try cluster.compute(index, ["--engines", "process", "--labels", "slot=\(index)"], namespace: inNamespace ? net.name : nil)
        }
        var processes = [try compute(0), try compute(1), try compute(2, inNamespace: true)]
        defer {
            for process in [orchestrator] + processes where process.isRunning { process.interrupt() }
        }
        try await cluster.waitForNodes(3)
        let script = """
            sleep 12; i=$BACALHAU_PARTITION_INDEX; echo "partition $i of $BACALHAU_PARTITION_COUNT" > /outputs/part-$i.txt; echo done-$i
            """
        let submitted = try await cluster.cli("exec", "--count", "6", "--id-only", "--wait=false", "--", "sh", "-c", script)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        // Every node runs some of it before the faults.
        let slots = Dictionary(uniqueKeysWithValues: try await cluster.nodes().compactMap { node in
            node.info.labels["slot"].map { (node.info.nodeID, $0) }
        })
        var busy = Set<String>()
        // Partitions may start seconds apart on a loaded machine (every commit is synced to
        // disk): each sleeps long enough that all are still running when the faults come.
        for _ in 0..<200 where busy.count < 3 {
            let running = try await cluster.state(id)?.executions?.items.filter { $0.computeState.stateType == .running } ?? []
            busy = Set(running.compactMap { slots[$0.nodeID] })
            if busy.count < 3 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(busy == ["0", "1", "2"], "partitions ran on slots \(busy)")

        // 1. A compute node dies and comes back (a new process: what it ran is lost).
        cluster.kill9(processes[0])
        processes[0] = try compute(0)
        // 2. The node in the namespace is cut off.
        try net.linkDown()
        // 3. The orchestrator dies and comes back on the same store.
        cluster.kill9(orchestrator)
        orchestrator = try cluster.orchestrator(settings)

        let job = try await cluster.waitForEnd(id, seconds: 120)
        #expect(job.job.state.stateType == .completed, "\(job.job.state)")
        let executions = job.executions?.items ?? []
        let completed = executions.filter { $0.computeState.stateType == .completed }
        #expect(completed.map(\.partitionIndex).sorted() == Array(0..<6), "completed partitions: \(completed.map(\.partitionIndex).sorted())")
        // The cut-off node completed nothing: its work was given up and ran elsewhere.
        let cutOff = slots.first { $0.value == "2" }?.key
        #expect(!completed.contains { $0.nodeID == cutOff })
        #expect(executions.contains { $0.nodeID == cutOff && $0.computeState.stateType == .failed })

        let output = try Paths.temporaryDirectory("cod-get")
        let get = try await cluster.cli("job", "get", id, "--output-dir", output.path)
        #expect(get.status == 0, "\(get.stderr)")
        for index in 0..<6 {
            #expect(text(output, "outputs/part-\(index).txt") == "partition \(index) of 6\n")
        }
        #expect(text(output, "stdout").split(separator: "\n").sorted() == (0..<6).map { "done-\($0)" }[...].sorted().map { Substring($0) })

        // The link comes back: the node rejoins and is healthy again.
        try net.linkUp()
        var healthy = false
        for _ in 0..<150 where !healthy {
            healthy = try await cluster.nodes().first { $0.info.nodeID == cutOff }?.liveness == .healthy
            if !healthy { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(healthy, "the cut-off node did not rejoin")
        // Its late report of work given up changed nothing.
        let after = try #require(try await cluster.state(id))
        #expect(after.executions?.items.filter { $0.computeState.stateType == .completed }.count == 6)
    }
}
