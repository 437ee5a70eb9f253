import APIClient
import ArgumentParser
import Foundation
import Models
import Wire

/// Writing and checking receipts, shared by `job receipts`, `job get --receipts` and
/// `receipt verify`.
enum ReceiptFiles {
    /// Writes each receipt as `<dir>/<CID>.dsse.json` (its exact bytes) and the keys that verify
    /// them as `<dir>/keys.json`.
    static func write(_ response: JobReceiptsResponse, to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for stored in (response.job.map { [$0] } ?? []) + response.executions {
            guard let bytes = Data(base64Encoded: stored.envelope) else { continue }
            try bytes.write(to: directory.appendingPathComponent("\(stored.cid).dsse.json"))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(response.keys).write(to: directory.appendingPathComponent("keys.json"))
    }

    /// Signer → key, from a `keys.json` map or from `cod node list --output json`.
    static func keys(from file: String) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: file) else { throw CLIFailure("cannot read keys file \(file)") }
        if let map = try? JSONDecoder().decode([String: String].self, from: data) { return map }
        if let nodes = try? JSONDecoder().decode(ListNodesResponse.self, from: data) {
            return Dictionary(nodes.nodes.compactMap { node in node.publicKey.map { (node.info.nodeID, $0) } }, uniquingKeysWith: { a, _ in a })
        }
        throw CLIFailure("\(file) is neither a keys.json map (signer: key) nor the output of cod node list --output json")
    }

    /// Verifies every receipt; returns one line each, and the problems (signatures, CIDs, chains).
    static func check(_ envelopes: [(name: String, bytes: Data, expectedCID: String?)], keys: [String: String]) -> (lines: [String], problems: [String]) {
        var lines: [String] = []
        var problems: [String] = []
        var byNode: [String: [(cid: String, receipt: ExecutionReceipt)]] = [:]
        for envelope in envelopes {
            do {
                let checked = try ReceiptCheck.verify(envelope.bytes, keys: keys)
                if let expected = envelope.expectedCID, expected != checked.cid {
                    problems.append("\(envelope.name): its bytes make CID \(checked.cid), not \(expected)")
                }
                if let receipt = checked.execution {
                    byNode[receipt.nodeID, default: []].append((checked.cid, receipt))
                    lines.append("ok  \(checked.cid)  execution \(receipt.executionID) on node \(receipt.nodeID): \(receipt.out.state), result \(receipt.out.resultCID ?? "-")")
                } else if let job = checked.job {
                    lines.append("ok  \(checked.cid)  job \(job.jobID) signed by the orchestrator: \(job.state), \(job.executions.count) execution receipts")
                }
            } catch {
                problems.append("\(envelope.name): \(error)")
            }
        }
        for (node, receipts) in byNode.sorted(by: { $0.key < $1.key }) {
            // Only a whole chain is checked for gaps: a job's receipts are a slice of each node's.
            for problem in ReceiptCheck.chainProblems(receipts) where problem.contains("follow") {
                problems.append("node \(node): \(problem)")
            }
        }
        return (lines, problems)
    }
}

extension JobCommand {
    struct Receipts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a job's signed receipts (the orchestrator's and each execution's), verify them, or export in-toto.")
        @Argument(help: "Job ID, ID prefix or name.") var id: String
        @Flag(help: "Check every signature and CID with the signers' keys.") var verify = false
        @Flag(help: "Print an in-toto statement with SLSA provenance (subject: the result).") var intoto = false
        @Option(name: .customLong("output-dir"), help: "Write each receipt as CID.dsse.json and keys.json there.") var outputDirectory: String?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let response = try await global.client().receipts(id)
            if let outputDirectory { try ReceiptFiles.write(response, to: URL(fileURLWithPath: outputDirectory)) }
            if intoto {
                print(String(decoding: try InToto.statement(response), as: UTF8.self))
                return
            }
            let all = (response.job.map { [$0] } ?? []) + response.executions
            if verify {
                let envelopes = all.compactMap { stored in Data(base64Encoded: stored.envelope).map { (stored.cid, $0, Optional(stored.cid)) } }
                let (lines, problems) = ReceiptFiles.check(envelopes, keys: response.keys)
                lines.forEach { print($0) }
                guard problems.isEmpty else { throw CLIFailure("receipts do not verify:\n  " + problems.joined(separator: "\n  ")) }
                print("All \(envelopes.count) receipts verify.")
                return
            }
            try global.print(response) {
                print(Output.table(["CID", "SIGNER", "EXECUTION"], all.map { [$0.cid, shortID($0.signer), $0.executionID.map(shortID) ?? "(job)"] }))
            }
        }
    }
}

/// `cod receipt verify FILE...`: checks receipts offline, with keys from a file.
struct ReceiptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "receipt", abstract: "Check signed receipts offline.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify receipt files (CID.dsse.json): signatures, CIDs, and that no two follow the same one.",
            discussion: "Keys: the keys.json that job get --receipts writes, or the output of cod node list --output json.")
        @Argument(help: "Receipt files.") var files: [String]
        @Option(help: "The signers' keys: keys.json, or cod node list --output json.") var keys: String
        @Flag(help: "Also require the files to form one whole chain per node (a node's every receipt, in any order).") var chain = false

        func run() async throws {
            guard !files.isEmpty else { throw ValidationError("give receipt files to verify") }
            let keyMap = try ReceiptFiles.keys(from: keys)
            var envelopes: [(String, Data, String?)] = []
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { throw CLIFailure("cannot read \(file)") }
                let name = URL(fileURLWithPath: file).lastPathComponent
                let expected = name.hasSuffix(".dsse.json") ? String(name.dropLast(".dsse.json".count)) : nil
                envelopes.append((file, data, expected))
            }
            var (lines, problems) = ReceiptFiles.check(envelopes, keys: keyMap)
            if chain {
                var byNode: [String: [(cid: String, receipt: ExecutionReceipt)]] = [:]
                for (_, bytes, _) in envelopes {
                    if let checked = try? ReceiptCheck.verify(bytes, keys: keyMap), let receipt = checked.execution {
                        byNode[receipt.nodeID, default: []].append((checked.cid, receipt))
                    }
                }
                for (node, receipts) in byNode where true {
                    for problem in ReceiptCheck.chainProblems(receipts) where !problem.contains("follow") {
                        problems.append("node \(node): \(problem)")
                    }
                }
            }
            lines.forEach { print($0) }
            guard problems.isEmpty else { throw CLIFailure("receipts do not verify:\n  " + problems.joined(separator: "\n  ")) }
            print("All \(envelopes.count) receipts verify\(chain ? ", and each node's form one chain" : "").")
        }
    }
}

/// An in-toto statement (v1) with SLSA provenance for a job's result, citing its receipts.
enum InToto {
    static func statement(_ response: JobReceiptsResponse) throws -> Data {
        guard let job = response.job, let bytes = Data(base64Encoded: job.envelope) else { throw CLIFailure("the job has no receipt") }
        let checked = try ReceiptCheck.verify(bytes, keys: response.keys)
        guard let receipt = checked.job else { throw CLIFailure("the job's receipt is not a job receipt") }
        var executions: [ExecutionReceipt] = []
        for stored in response.executions {
            if let data = Data(base64Encoded: stored.envelope), let execution = try? ReceiptCheck.verify(data, keys: response.keys).execution {
                executions.append(execution)
            }
        }
        let subjects: [[String: Any]] = receipt.resultCIDs.map { cid in
            ["name": cid, "digest": ["cid": cid]]
        }
        let inputs = Set(executions.flatMap { $0.inputs.map(\.cid) }).sorted()
        let statement: [String: Any] = [
            "_type": "https://in-toto.io/Statement/v1",
            "subject": subjects,
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": [
                "buildDefinition": [
                    "buildType": "https://cod.example/job/v1",
                    "externalParameters": ["jobID": receipt.jobID, "jobVersion": receipt.jobVersion],
                    "resolvedDependencies": inputs.map { ["uri": "ipfs://\($0)", "digest": ["cid": $0]] },
                ],
                "runDetails": [
                    "builder": ["id": "cod-orchestrator:" + (response.keys["orchestrator"] ?? "")],
                    "metadata": [
                        "invocationId": receipt.jobID, "finishedOn": receipt.issuedAt,
                        "startedOn": executions.map(\.startedAt).min() ?? receipt.issuedAt,
                    ],
                    "byproducts": ([job] + response.executions).map { ["name": "receipt", "digest": ["cid": $0.cid], "mediaType": "application/vnd.dsse.envelope.v1+json"] },
                ],
            ],
        ]
        return try JSONSerialization.data(withJSONObject: statement, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }
}
