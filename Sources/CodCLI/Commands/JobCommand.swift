import APIClient
import ArgumentParser
import CSystemShims
import Foundation
import JobSpec
import Models
import Wire

struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job", abstract: "Submit, inspect and manage jobs.",
        subcommands: [Run.self, Estimate.self, Describe.self, List.self, Executions.self, Tree.self, Cost.self, Verification.self, Receipts.self, History.self, Logs.self, Stop.self, Rerun.self, Get.self, Validate.self, GC.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Submit a job file (YAML or JSON; - for stdin) and wait for it.")

        @Argument(help: "The job spec file, or - to read standard input.") var file: String
        @Option(help: "Wait for the job to finish (--wait=false returns at once).") var wait: Bool = true
        @Flag(name: .customLong("id-only"), help: "Print only the job ID.") var idOnly = false
        @Flag(help: "Estimate the cost first; ask before submitting when its P90 is above --confirm-above.") var estimate = false
        @Option(name: .customLong("confirm-above"), help: "With --estimate: micro-credits of P90 cost above which to ask (default 1 credit).")
        var confirmAbove: Int64 = 1_000_000
        @Flag(name: .shortAndLong, help: "With --estimate: submit without asking.") var yes = false
        @OptionGroup var verification: VerificationOptions
        @OptionGroup var global: APIOptions

        func run() async throws {
            let job = try JobFile.prepared(file, verification)
            let client = try await global.client()
            if estimate {
                let expected = try await client.estimate(job)
                FileHandle.standardError.write(Data((EstimateOutput.table(expected) + "\n").utf8))
                if expected.cost.p90 > confirmAbove, !yes {
                    guard isatty(STDIN_FILENO) == 1, file != "-" else {
                        throw CLIFailure(
                            "the estimate's P90 (\(Output.credits(expected.cost.p90))) is above \(Output.credits(confirmAbove)); not submitted "
                                + "(add --yes to submit anyway, or raise --confirm-above)")
                    }
                    FileHandle.standardError.write(Data("Submit it? [y/N] ".utf8))
                    guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                        throw CLIFailure("not submitted")
                    }
                }
            }
            try await JobFollower(client: client).submitAndFollow(job, wait: wait, idOnly: idOnly)
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a job file without submitting it.")
        @Argument var file: String

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIFailure("cannot read job file \(file)") }
            _ = try JobSpecParser.prepare(try JobSpecParser.parse(String(decoding: data, as: UTF8.self)))
            print("The job spec is valid.")
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a job, its executions and its history.")

        static func percent(_ fraction: Double) -> String {
            let value = fraction * 100
            return value == value.rounded() ? "\(Int(value))%" : String(format: "%.1f%%", value)
        }
        @Argument(help: "Job ID, ID prefix or name.") var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let client = global.client()
            let response = try await client.job(id, include: ["executions", "history"])
            let results = response.job.state.stateType == .completed ? (try? await client.results(response.job.id)) ?? [] : []
            let audited = (response.executions?.items ?? []).contains { $0.check != nil } || (response.job.verification?.spotCheck ?? 0) > 0
            let verification = response.job.isVerified || audited ? try? await client.verification(response.job.id) : nil
            try global.print(response) {
                let job = response.job
                print("ID        : \(job.id)")
                print("Name      : \(job.name)")
                print("Namespace : \(job.namespace)")
                print("Type      : \(job.type)")
                print("State     : \(job.state.stateType.rawValue)")
                if !job.state.message.isEmpty { print("Message   : \(job.state.message)") }
                print("Count     : \(job.partitionCount)")
                if let parent = job.parentJobID {
                    print("Parent    : \(parent) (execution \(job.parentExecutionID.map(shortID) ?? "-"))")
                }
                if let limits = job.children {
                    let budget = limits.budget.map { ", Budget \($0) micro-credits" } ?? ""
                    print("Children  : up to \(limits.maxJobs), \(limits.maxConcurrent) at once, \(limits.maxDepth) level(s) below\(budget)\(limits.cancelWithParent ? "" : ", detached") (cod job tree \(shortID(job.id)))")
                }
                print("Created   : \(Output.time(job.createTime))")
                print("Modified  : \(Output.time(job.modifyTime))")
                let executions = response.executions?.items ?? []
                var summary: [String: Int] = [:]
                for execution in executions { summary[execution.computeState.stateType.name, default: 0] += 1 }
                print("Summary   : " + summary.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                if let cid = ResultDownloader.singleCID(results) { print("Result    : \(cid)") }
                if let settings = job.verification, settings.mode == .fast, settings.spotCheck > 0 {
                    print("Verify    : Fast, spot-checking \(Self.percent(settings.spotCheck)) of partitions on another node")
                }
                if let settings = job.verification, settings.mode != .fast {
                    print("Verify    : \(settings.mode.rawValue)" + (settings.isVerified
                        ? ", \(settings.replicas) replicas, quorum \(settings.quorum), at most \(settings.maxReplicas)\(settings.adaptive ? ", adaptive" : "")"
                        : ", on nodes with " + settings.trustLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")))
                }
                if let verification, !verification.partitions.isEmpty {
                    print("\nVerification")
                    for partition in verification.partitions {
                        if let check = partition.check { print("Partition \(partition.partition): \(check.message)") }
                    }
                    print(Output.table(
                        ["PARTITION", "STATE", "ACCEPTED RESULT", "AGREED", "DISAGREED", "RUNNING", "FAILED"],
                        verification.partitions.map { partition in
                            let agreed = partition.groups.first { $0.key == partition.acceptedKey }?.executions.count ?? 0
                            let all = partition.groups.reduce(0) { $0 + $1.executions.count }
                            return [String(partition.partition), partition.state, partition.acceptedKey ?? "-", String(agreed),
                                    String(partition.acceptedKey == nil ? 0 : all - agreed), String(partition.running.count), String(partition.failed.count)]
                        }))
                }
                print("\nExecutions")
                print(Output.table(
                    ["CREATED", "ID", "NODE", "PARTITION", "STATE", "DESIRED", "EXIT", "READ (LOCAL/NETWORK)", "COMMENT"],
                    executions.map {
                        [Output.time($0.createTime), shortID($0.id), shortID($0.nodeID), $0.isReduce ? "reduce" : String($0.partitionIndex),
                         $0.computeState.stateType.name, $0.desiredState.stateType.name,
                         $0.runOutput.map { String($0.exitCode) } ?? "-",
                         $0.inputStats.map { "\(ResourceParsing.formatBytes($0.localBytes)) / \(ResourceParsing.formatBytes($0.networkBytes))" } ?? "-",
                         Output.comment($0)]
                    }))
                let metered = executions.filter { $0.usage != nil }
                if !metered.isEmpty {
                    print("\nUsage (as each node measured it)")
                    print(Output.table(
                        ["ID", "WALL", "CPU", "PEAK MEMORY", "MEMORY", "GPU", "READ (LOCAL/PEERS/OUTSIDE)", "PUBLISHED", "METERED BY"],
                        metered.map { execution in
                            let usage = execution.usage!
                            let bytes = ResourceParsing.formatBytes
                            return [shortID(execution.id), Output.seconds(usage.wallSeconds), usage.cpuSeconds.map(Output.seconds) ?? "-",
                                    usage.peakMemoryBytes.map(bytes) ?? "-", usage.memoryGiBSeconds.map { String(format: "%.3f GiB·s", $0) } ?? "-",
                                    usage.gpuSeconds > 0 ? Output.seconds(usage.gpuSeconds) : "-",
                                    "\(bytes(usage.bytesReadLocally)) / \(bytes(usage.bytesReadFromPeers)) / \(bytes(usage.bytesReadFromOutside))",
                                    bytes(usage.bytesPublished), usage.meteredBy ?? "not measured"]
                        }))
                }
                print("\nHistory")
                print(Output.historyTable(response.history?.items ?? []))
                for execution in executions where execution.runOutput != nil {
                    let output = execution.runOutput!
                    print("\nStandard output of \(shortID(execution.id))\(output.stdoutTruncated ? " (first 2 KB)" : ""):")
                    print(output.stdout.isEmpty ? "(empty)" : output.stdout)
                    if !output.stderr.isEmpty {
                        print("Standard error of \(shortID(execution.id))\(output.stderrTruncated ? " (first 2 KB)" : ""):")
                        print(output.stderr)
                    }
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs, newest first.")
        @Option(help: "How many jobs to show.") var limit = 10
        @Option(name: .customLong("next-token"), help: "Continue from a previous page.") var nextToken = ""
        @Flag(name: .customLong("order-reversed"), help: "Oldest first.") var reversed = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let page = try await global.client().listJobs(limit: limit, nextToken: nextToken, reverse: reversed)
            try global.print(page) {
                print(Output.table(
                    ["CREATED", "ID", "NAME", "TYPE", "STATE"],
                    page.items.map { [Output.time($0.createTime), shortID($0.id), $0.name == $0.id ? "" : $0.name, $0.type, $0.state.stateType.rawValue] }))
                if !page.nextToken.isEmpty { print("\nMore: cod job list --next-token \(page.nextToken)") }
            }
        }
    }

    struct Executions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a job's executions.")
        @Argument var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let executions = try await global.client().executions(id)
            try global.print(ListResponse(items: executions)) {
                print(Output.table(
                    ["CREATED", "MODIFIED", "ID", "NODE ID", "REV.", "STATE", "DESIRED", "COMMENT"],
                    executions.map {
                        [Output.time($0.createTime), Output.time($0.modifyTime), shortID($0.id), shortID($0.nodeID), String($0.revision),
                         $0.computeState.stateType.name, $0.desiredState.stateType.name,
                         Output.comment($0)]
                    }))
            }
        }
    }

    /// A job and the jobs it started, level by level.
    struct Tree: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a job and the child jobs it started, with their states, as a tree.")
        @Argument(help: "Job ID, ID prefix or name.") var id: String
        @OptionGroup var global: GlobalOptions

        /// A job and its subtree, as JSON prints it.
        struct Node: Codable {
            var job: Job
            var children: [Node]
            enum CodingKeys: String, CodingKey { case job = "Job", children = "Children" }
        }

        func run() async throws {
            let client = try await global.client()
            let top = try await client.job(id).job
            func grow(_ job: Job, depth: Int) async throws -> Node {
                guard depth < ChildLimits.deepest else { return Node(job: job, children: []) }
                var children: [Node] = []
                for child in try await client.children(job.id) { children.append(try await grow(child, depth: depth + 1)) }
                return Node(job: job, children: children)
            }
            let tree = try await grow(top, depth: 0)
            try global.print(tree) {
                func show(_ node: Node, prefix: String, last: Bool, top: Bool) {
                    let job = node.job
                    let line = "\(shortID(job.id))  \(job.name)  \(job.state.stateType.rawValue)\(job.state.message.isEmpty ? "" : ": \(job.state.message)")"
                    print(top ? line : prefix + (last ? "└─ " : "├─ ") + line)
                    let next = top ? "" : prefix + (last ? "   " : "│  ")
                    for (index, child) in node.children.enumerated() {
                        show(child, prefix: next, last: index == node.children.count - 1, top: false)
                    }
                }
                show(tree, prefix: "", last: true, top: true)
            }
        }
    }

    /// What each execution of a job cost: its metered usage priced by the price list its node
    /// published when the execution was placed there.
    struct Cost: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what a job's executions cost: each one's metered usage priced by its node's price list, and the total.")
        @Argument(help: "Job ID, ID prefix or name.") var id: String
        @OptionGroup var global: GlobalOptions

        struct Report: Codable {
            struct Line: Codable {
                var executionID: String
                var nodeID: String
                var partition: String
                var state: String
                var verdict: String?
                var usage: Models.Usage?
                var microCredits: Int64?
                /// What the ledger paid its node from the job's hold (less than its cost when the
                /// budget ran out; nothing for a result found wrong).
                var charged: Int64?
                enum CodingKeys: String, CodingKey {
                    case executionID = "ExecutionID", nodeID = "NodeID", partition = "Partition", state = "State", verdict = "Verdict"
                    case usage = "Usage", microCredits = "MicroCredits", charged = "Charged"
                }
            }
            var jobID: String
            var executions: [Line]
            /// The sum of the priced executions.
            var totalMicroCredits: Int64
            /// Executions that ran on a node without a price list, or reported no usage.
            var unpriced: Int
            /// The ledger's view: what submitting held, what was charged, released and refunded.
            var held: Int64
            var charged: Int64
            var released: Int64
            var refunded: Int64
            /// What the job was expected to cost when submitted (from the history before it).
            var estimate: JobEstimate?
            enum CodingKeys: String, CodingKey {
                case jobID = "JobID", executions = "Executions", totalMicroCredits = "TotalMicroCredits", unpriced = "Unpriced"
                case held = "Held", charged = "Charged", released = "Released", refunded = "Refunded", estimate = "Estimate"
            }
        }

        func run() async throws {
            let client = try await global.client()
            let response = try await client.job(id, include: ["executions"])
            let ran = (response.executions?.items ?? []).filter { $0.usage != nil }
                .sorted { ($0.partitionIndex, $0.createTime) < ($1.partitionIndex, $1.createTime) }
            let entries = try await client.ledger(job: response.job.id)
            let sum = { (kind: LedgerEntry.Kind) in entries.filter { $0.kind == kind }.reduce(Int64(0)) { $0 &+ $1.amount } }
            let charges = Dictionary(entries.filter { $0.kind == .charge }.compactMap { e in e.executionID.map { ($0, e.amount) } }, uniquingKeysWith: +)
            let lines = ran.map { execution in
                Report.Line(
                    executionID: execution.id, nodeID: execution.nodeID, partition: execution.isReduce ? "reduce" : String(execution.partitionIndex),
                    state: execution.computeState.stateType.name, verdict: execution.verdict?.rawValue, usage: execution.usage,
                    microCredits: execution.cost, charged: charges[execution.id])
            }
            let total = lines.compactMap(\.microCredits).reduce(Int64(0)) { $0.addingReportingOverflow($1).partialValue }
            let report = Report(
                jobID: response.job.id, executions: lines, totalMicroCredits: total, unpriced: lines.filter { $0.microCredits == nil }.count,
                held: sum(.hold), charged: sum(.charge), released: sum(.release), refunded: sum(.refund),
                estimate: try? await client.estimate(ofJob: response.job.id))
            try global.print(report) {
                guard !lines.isEmpty else {
                    print("Job \(response.job.id) has no execution that ended with metered usage yet.")
                    return
                }
                print(Output.table(
                    ["PARTITION", "EXECUTION", "NODE", "STATE", "VERDICT", "CPU", "MEMORY", "FETCHED", "COST", "CHARGED"],
                    lines.map { line in
                        let usage = line.usage
                        return [line.partition, shortID(line.executionID), shortID(line.nodeID), line.state, line.verdict ?? "-",
                                usage?.cpuSeconds.map(Output.seconds) ?? "-", usage?.memoryGiBSeconds.map { String(format: "%.3f GiB·s", $0) } ?? "-",
                                usage.map { ResourceParsing.formatBytes($0.bytesReadFromPeers &+ $0.bytesReadFromOutside) } ?? "-",
                                line.microCredits.map(Output.credits) ?? "unpriced", line.charged.map(Output.credits) ?? "-"]
                    }))
                print("\nTotal: \(Output.credits(total)) for \(lines.count - report.unpriced) priced execution\(lines.count - report.unpriced == 1 ? "" : "s")"
                    + (report.unpriced > 0 ? "; \(report.unpriced) unpriced (their node publishes no price list, or reported no usage)" : ""))
                if let estimate = report.estimate {
                    let actual = Dictionary(lines.map { ($0.partition, $0.microCredits ?? 0) }, uniquingKeysWith: +)
                    print("\nEstimated at submission (\(estimate.basis.rawValue.lowercased()): \(estimate.basisDetail)):")
                    print(Output.table(
                        ["PARTITION", "ESTIMATE P50", "ESTIMATE P90", "ACTUAL"],
                        estimate.parts.map { part in
                            let name = part.partition < 0 ? "reduce" : String(part.partition)
                            return [name, Output.credits(part.cost.p50), Output.credits(part.cost.p90), actual[name].map(Output.credits) ?? "-"]
                        } + [["total", Output.credits(estimate.cost.p50), Output.credits(estimate.cost.p90), Output.credits(total)]]))
                }
                if report.held > 0 {
                    print("Ledger: held \(Output.credits(report.held)), charged \(Output.credits(report.charged)), released \(Output.credits(report.released))"
                        + (report.refunded > 0 ? ", refunded \(Output.credits(report.refunded))" : "")
                        + (report.charged + report.released < report.held ? " (still held: the job has not ended)" : ""))
                }
            }
        }
    }

    struct Verification: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show how a verified job's replicas compare: each partition's result groups and verdicts.")
        @Argument(help: "Job ID, ID prefix or name.") var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let report = try await global.client().verification(id)
            try global.print(report) {
                guard !report.partitions.isEmpty else {
                    print("Job \(report.jobID) is not verified (Verification.Mode Fast): each partition ran once, unchecked.")
                    return
                }
                if let settings = report.verification, settings.isVerified {
                    print("Verified: \(settings.replicas) replicas, quorum \(settings.quorum), at most \(settings.maxReplicas), compared: \(settings.compare.joined(separator: ", "))")
                } else {
                    let fraction = report.verification?.spotCheck ?? 0
                    print("Fast" + (fraction > 0 ? ", spot-checking \(Describe.percent(fraction)) of partitions" : "")
                        + "; an audited result is re-run on other nodes and stands unless two of them agree on another result")
                }
                for partition in report.partitions {
                    if let check = partition.check { print("Partition \(partition.partition): \(check.message)") }
                }
                var rows: [[String]] = []
                for partition in report.partitions {
                    for group in partition.groups {
                        rows.append([
                            String(partition.partition), partition.state, group.key, String(group.executions.count),
                            group.executions.map { "\(shortID($0.executionID))@\(shortID($0.nodeID))" }.joined(separator: " "),
                            group.key == partition.acceptedKey ? (partition.state == "Unchecked" ? "unchecked" : "accepted")
                                : (partition.acceptedKey == nil ? "" : "invalid"),
                        ])
                    }
                    if partition.groups.isEmpty { rows.append([String(partition.partition), partition.state, "-", "0", "", ""]) }
                    if !partition.running.isEmpty || !partition.failed.isEmpty {
                        rows.append([
                            String(partition.partition), partition.state, "(no result)", String(partition.running.count + partition.failed.count),
                            (partition.running.map { "\(shortID($0)) running" } + partition.failed.map { "\(shortID($0)) failed" }).joined(separator: " "), "",
                        ])
                    }
                }
                print(Output.table(["PARTITION", "STATE", "RESULT KEY", "REPLICAS", "EXECUTIONS", "VERDICT"], rows))
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a job's history.")
        @Argument var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let history = try await global.client().history(id)
            try global.print(ListResponse(items: history)) {
                print(Output.historyTable(history))
            }
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a job's standard output and error.")
        @Argument var id: String
        @Flag(name: .shortAndLong, help: "Keep following until the job ends.") var follow = false
        @Option(name: [.short, .customLong("execution-id")], help: "Only this execution.") var executionID = ""
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            // Lines reach a pipe (`| grep`) as they arrive, not when the buffer fills.
            cod_line_buffer_stdout()
            try await global.client().logs(id, follow: follow, executionID: executionID) { log in
                if log.type == 2 {
                    FileHandle.standardError.write(Data((log.line + "\n").utf8))
                } else {
                    print(log.line)
                }
            }
        }
    }

    struct Rerun: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a job again as its next version (earlier versions' executions stay in its history).")
        @Argument var id: String
        @Option(help: "Why (shown in the history).") var reason = ""
        @Option(name: .customLong("version"), help: "Rerun only if this is still the job's current version.") var version: UInt64?
        @Option(help: "Wait for the new version to finish (--wait=false returns at once).") var wait: Bool = true
        @Flag(name: .customLong("id-only"), help: "Print only the job ID.") var idOnly = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let client = try global.client()
            let response = try await client.rerun(id, version: version, reason: reason)
            if !idOnly { print("Job \(response.jobID) rerun as version \(response.jobVersion) (evaluation \(response.evaluationID)).") }
            guard wait else {
                if idOnly { print(response.jobID) }
                return
            }
            if idOnly { print(response.jobID) }
            try await JobFollower(client: client).follow(jobID: response.jobID, idOnly: idOnly)
        }
    }

    struct GC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc",
            abstract: "Remove ended jobs past the orchestrator's retention now (serve --job-retention, --keep-jobs).",
            discussion: "The orchestrator also does this every minute. Jobs that have not ended are never removed.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let report = try await global.client().collectGarbage()
            try global.print(report) {
                print("removed \(report.jobs) ended jobs (\(report.executions) executions), \(ResourceParsing.formatBytes(UInt64(max(0, report.bundleBytes)))) of result bundles, \(report.blocks) result blocks (\(ResourceParsing.formatBytes(report.blockBytes)))")
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a job and its executions.")
        @Argument var id: String
        @Option(help: "Why it is stopped (shown in the history).") var reason = ""
        @Flag(help: "Print nothing.") var quiet = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let response = try await global.client().stop(id, reason: reason)
            if !quiet { print("Job stop requested (evaluation \(response.evaluationID)).") }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Download a job's results: stdout, stderr, exitCode and outputs.")
        @Argument var id: String
        @Option(name: .customLong("output-dir"), help: "Where to write (default ./job-<id>).") var outputDirectory: String?
        @Flag(help: "Keep each execution's raw results under raw/.") var raw = false
        @Flag(help: "Write the job's signed receipts under receipts/ (with keys.json to verify them offline).") var receipts = false
        @OptionGroup var global: APIOptions

        func run() async throws {
            let client = global.client()
            let job = try await client.job(id).job
            let directory = URL(fileURLWithPath: outputDirectory ?? "job-\(shortID(job.id))")
            let results = try await ResultDownloader(client: client).download(jobID: job.id, into: directory, keepRaw: raw)
            guard !results.isEmpty else {
                throw CLIFailure("no results found for job \(shortID(job.id)) (state \(job.state.stateType.rawValue)); try cod job logs \(shortID(job.id))")
            }
            if receipts { try ReceiptFiles.write(try await client.receipts(job.id), to: directory.appendingPathComponent("receipts")) }
            print("Results for job \(shortID(job.id)) have been written to\n\(directory.path)")
            if let cid = ResultDownloader.singleCID(results) { print("Result CID: \(cid)") }
        }
    }
}
