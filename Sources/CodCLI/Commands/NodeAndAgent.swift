import APIClient
import ArgumentParser
import Foundation
import Models
import Wire

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Inspect compute nodes and decide who may work.",
        subcommands: [List.self, Reputation.self, Receipts.self, Approve.self, Reject.self, Release.self, Delete.self, TokenCommand.self])

    /// `approve`, `reject`, `release`, `delete`: one shape, four actions.
    struct Decision: ParsableArguments {
        @Argument(help: "The node's ID (or a unique prefix).") var id: String
        @Option(name: [.short, .customLong("message")], help: "Why, for the record.") var message = ""
        @OptionGroup var global: GlobalOptions

        func run(_ action: String, done: String) async throws {
            let response = try await global.client().decide(node: id, action: action, message: message)
            guard response.success else { throw CLIFailure(response.error) }
            print("Node \(response.node.map { shortID($0.info.nodeID) } ?? id) \(done).")
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a node take work (with --node-approval manual it waits as PENDING).")
        @OptionGroup var decision: Decision
        func run() async throws { try await decision.run("approve", done: "approved") }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Refuse a node: it is disconnected, its work moves elsewhere, and it cannot rejoin until approved.")
        @OptionGroup var decision: Decision
        func run() async throws { try await decision.run("reject", done: "rejected") }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Let a quarantined node work again: its invalid results so far stop counting toward --quarantine-after (its reputation keeps them).")
        @OptionGroup var decision: Decision
        func run() async throws { try await decision.run("release", done: "released from quarantine") }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forget a node: it is disconnected and its work moves elsewhere; if it connects again it joins as new.")
        @OptionGroup var decision: Decision
        func run() async throws { try await decision.run("delete", done: "deleted") }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the nodes that joined the cluster.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let nodes = try await global.client().nodes()
            try global.print(ListNodesResponse(nodes: nodes)) {
                print(Output.table(
                    ["ID", "TYPE", "APPROVAL", "LIVENESS", "LAST SEEN", "ENGINES", "NETWORK", "CPU (FREE/TOTAL)", "MEMORY (FREE/TOTAL)", "GPU",
                     "RUNNING", "DATA", "PRICES", "LABELS"],
                    nodes.map { node in
                        let info = node.info.computeNodeInfo
                        let cpu = String(format: "%.1f / %.1f", info.availableCapacity.cpu, info.maxCapacity.cpu)
                        let memory = "\(ResourceParsing.formatBytes(info.availableCapacity.memory)) / \(ResourceParsing.formatBytes(info.maxCapacity.memory))"
                        let labels = node.info.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                        let gpus = info.maxCapacity.gpu == 0 ? "-" : "\(info.availableCapacity.gpu) / \(info.maxCapacity.gpu)"
                        let data = info.heldRoots.isEmpty ? "-" : "\(info.heldRoots.count) root\(info.heldRoots.count == 1 ? "" : "s")"
                        return [shortID(node.info.nodeID), node.info.nodeType, node.membership.rawValue, node.liveness.rawValue,
                                Self.ago(node.lastHeartbeat), info.executionEngines.joined(separator: ","), info.networks.joined(separator: ","),
                                cpu, memory, gpus, String(info.runningExecutions), data, Self.prices(info), labels]
                    }))
                // Hellos refused for an enrolled node's ID: someone else tried to be it.
                for node in nodes {
                    if let refusal = node.lastRefusal { print("\(shortID(node.info.nodeID)) last refused hello: \(refusal)") }
                    if let quarantine = node.quarantine { print("\(shortID(node.info.nodeID)) \(quarantine)") }
                }
                // Each price list once, by CID: what every node that publishes it charges.
                var shown = Set<String>()
                for node in nodes {
                    guard let list = node.info.computeNodeInfo.priceList, let cid = node.info.computeNodeInfo.priceListCID,
                        shown.insert(cid).inserted
                    else { continue }
                    print("prices \(Self.short(cid)): start \(list.start), per CPU-second \(list.perCPUSecond), per GiB-second \(list.perGiBSecond), "
                        + "per GPU-second \(list.perGPUSecond), per GiB fetched \(list.perGiBFetched), minimum \(list.minimum) (micro-credits)")
                }
            }
        }

        static func short(_ cid: String) -> String { cid.count > 14 ? "…" + cid.suffix(10) : cid }

        /// The node's price list as its short CID; "-" for a node that sets none.
        static func prices(_ info: ComputeNodeInfo) -> String {
            info.priceListCID.map(short) ?? "-"
        }
    }

    struct Receipts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show every receipt a node signed, as received; --verify checks each signature and that the chain has no gap or fork.")
        @Argument(help: "A node ID or prefix.") var node: String
        @Flag(help: "Verify signatures, CIDs and the whole chain.") var verify = false
        @Option(name: .customLong("output-dir"), help: "Write each receipt as CID.dsse.json and keys.json there.") var outputDirectory: String?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let response = try await global.client().nodeReceipts(node)
            if let outputDirectory { try ReceiptFiles.write(response, to: URL(fileURLWithPath: outputDirectory)) }
            guard verify else {
                try global.print(response) {
                    print(Output.table(["CID", "EXECUTION"], response.executions.map { [$0.cid, $0.executionID.map(shortID) ?? ""] }))
                }
                return
            }
            let envelopes = response.executions.compactMap { stored in Data(base64Encoded: stored.envelope).map { (stored.cid, $0, Optional(stored.cid)) } }
            var (lines, problems) = ReceiptFiles.check(envelopes, keys: response.keys)
            let chain = envelopes.compactMap { envelope -> (cid: String, receipt: ExecutionReceipt)? in
                guard let checked = try? ReceiptCheck.verify(envelope.1, keys: response.keys), let receipt = checked.execution else { return nil }
                return (checked.cid, receipt)
            }
            problems += ReceiptCheck.chainProblems(chain).filter { !$0.contains("follow") }
            if let first = chain.first, !first.receipt.prev.isEmpty, !chain.contains(where: { $0.cid == first.receipt.prev }) {
                problems.append("the first receipt received follows \(first.receipt.prev), which never arrived")
            }
            lines.forEach { print($0) }
            guard problems.isEmpty else { throw CLIFailure("node \(node)'s receipts do not verify:\n  " + problems.joined(separator: "\n  ")) }
            print("All \(envelopes.count) receipts of node \(node) verify and form one chain.")
        }
    }

    struct Reputation: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show how nodes' verified results fared, per engine and artifact (valid, invalid, errors, timeouts).")
        @Argument(help: "A node ID or prefix; all nodes when left out.") var node: String?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let items = try await global.client().reputation(node: node)
            try global.print(ListResponse(items: items)) {
                guard !items.isEmpty else {
                    print("No verified results yet. Run jobs with --verify verified to build reputations.")
                    return
                }
                print(Output.table(
                    ["NODE", "ENGINE", "ARTIFACT", "IN A ROW", "VALID", "INVALID", "ERRORS", "TIMEOUTS"],
                    items.map {
                        [shortID($0.nodeID), $0.engine, $0.artifact.count > 48 ? String($0.artifact.prefix(45)) + "..." : $0.artifact,
                         String($0.consecutiveValid), String($0.valid), String($0.invalid), String($0.errors), String($0.timeouts)]
                    }))
            }
        }
    }
}

/// `cod node token create|list|revoke`: the tokens that enroll new compute nodes (admin).
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Make, list and revoke the join tokens new compute nodes enroll with.",
        discussion: """
            A token enrolls new nodes until it expires or is revoked. Enrolled nodes reconnect with
            their own key: revoking the token that enrolled them does not disconnect them (cod node
            reject or delete does). The token the orchestrator was started with is listed as startup.
            """,
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a join token; its secret is printed this once.")
        @Option(help: "A name for the record (letters, digits, - _ .).") var name: String
        @Option(help: "Stop enrolling after this long (e.g. 1h, 7d); never when not given.") var expires: String?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            var lifetime: Int64?
            if let expires {
                guard let seconds = ResourceParsing.seconds(expires) else {
                    throw ValidationError("--expires takes a duration such as 90m, 24h or 7d, not \(expires)")
                }
                lifetime = seconds
            }
            let response = try await global.client().createJoinToken(name: name, expiresInSeconds: lifetime)
            try global.print(response) {
                print("Join token \(response.token.id) (\(response.token.name)), \(TokenCommand.expiry(response.token)):")
                print(response.secret)
                Output.note("Give it to a node with --token-file FILE (keeps it out of the process list); it is not shown again.")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List join tokens (never their secrets).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let tokens = try await global.client().joinTokens()
            let now = Int64(Date().timeIntervalSince1970 * 1e9)
            try global.print(ListResponse(items: tokens)) {
                print(Output.table(
                    ["ID", "NAME", "STATE", "CREATED BY", "CREATED", "EXPIRES", "ENROLLED", "LAST USED"],
                    tokens.map { token in
                        [token.id, token.name, token.state(now: now).rawValue, token.createdBy, Output.time(token.createTime),
                         token.expireTime == 0 ? "never" : Output.time(token.expireTime), String(token.enrollments),
                         Output.time(token.lastUsedTime)]
                    }))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a join token from enrolling nodes; nodes it enrolled stay.")
        @Argument(help: "The token's ID (or a unique prefix).") var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let token = try await global.client().revokeJoinToken(id)
            try global.print(token) {
                print("Join token \(token.id) (\(token.name)) is revoked; nodes it enrolled (\(token.enrollments)) stay enrolled.")
            }
        }
    }

    static func expiry(_ token: JoinTokenInfo) -> String {
        token.expireTime == 0 ? "never expires" : "expires \(Output.time(token.expireTime)) UTC"
    }
}

extension NodeCommand.List {
    /// How long ago a Unix-nanosecond time was, e.g. `3s ago`.
    static func ago(_ nanos: Int64) -> String {
        guard nanos > 0 else { return "-" }
        let seconds = max(0, Int(Date().timeIntervalSince1970 - Double(nanos) / 1e9))
        switch seconds {
        case ..<60: return "\(seconds)s ago"
        case ..<3600: return "\(seconds / 60)m ago"
        case ..<86400: return "\(seconds / 3600)h ago"
        default: return "\(seconds / 86400)d ago"
        }
    }
}

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Query the node the CLI talks to.", subcommands: [Alive.self, Version.self])

    struct Alive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that the API answers.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let response = try await global.client().alive()
            try global.print(response) { print(response.status) }
        }
    }

    struct Version: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the server's version.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let info = try await global.client().version()
            try global.print(info) { print(info.gitVersion) }
        }
    }
}
