import APIClient
import Archives
import BlockStore
import Crypto
import Foundation
import Models
import Wire

/// Submits a job and follows it to the end, as `job run` and `wasm run` do.
struct JobFollower {
    let client: CodClient

    /// Returns the final job; throws when it did not complete.
    func submitAndFollow(_ job: Job, wait: Bool, idOnly: Bool, quiet: Bool = false) async throws {
        let response = try await client.submit(job)
        for warning in response.warnings { Output.note("Warning: \(warning)") }
        if idOnly {
            print(response.jobID)
        } else {
            print("Job successfully submitted. Job ID: \(response.jobID)")
        }
        guard wait else { return }
        try await follow(jobID: response.jobID, idOnly: idOnly)
    }

    /// Follows a job to its end, printing its states and then its output; throws when it did
    /// not complete.
    func follow(jobID: String, idOnly: Bool) async throws {
        if !idOnly { print("Checking job status... (Ctrl+C stops watching; the job keeps running)\n") }
        var revision: UInt64 = 0
        var lastState: JobStateType?
        var final: Job
        while true {
            final = try await client.wait(jobID, afterRevision: revision, timeoutSeconds: 30)
            revision = final.revision
            if !idOnly, final.state.stateType != lastState {
                lastState = final.state.stateType
                let message = final.state.message.isEmpty ? "" : " (\(final.state.message))"
                print("  \(Output.time(final.modifyTime))  \(final.state.stateType.rawValue)\(message)")
            }
            if final.state.stateType.isTerminal { break }
        }
        if idOnly {
            guard final.state.stateType == .completed else { throw CLIFailure("job \(final.id) \(final.state.stateType.rawValue.lowercased()): \(final.state.message)") }
            return
        }
        print("")
        switch final.state.stateType {
        case .completed:
            try await printOutputs(jobID: final.id, version: final.version)
            print("\nTo download the results: cod job get \(shortID(final.id))")
            print("To get more details:     cod job describe \(shortID(final.id))")
        case .failed, .stopped, .undefined, .pending, .queued, .running:
            let executions = try await client.executions(final.id)
            for execution in executions where execution.computeState.stateType == .failed {
                let output = execution.runOutput
                if let stderr = output?.stderr, !stderr.isEmpty { Output.note("stderr of \(shortID(execution.id)):\n\(stderr)") }
            }
            throw CLIFailure(
                "job \(shortID(final.id)) \(final.state.stateType.rawValue.lowercased()): \(final.state.message)\n"
                    + "To get more details: cod job describe \(shortID(final.id))")
        }
    }

    /// Prints each execution's standard output (full, from the stored results).
    func printOutputs(jobID: String, version: UInt64) async throws {
        let completed = try await client.executions(jobID)
            .filter { $0.computeState.stateType == .completed && $0.jobVersion == version }
        // A job that reduces prints what its reduce task printed.
        let reduce = completed.filter(\.isReduce)
        let executions = reduce.isEmpty ? completed : reduce
        for execution in executions.sorted(by: { $0.partitionIndex < $1.partitionIndex }) {
            if executions.count > 1 { print("Partition \(execution.partitionIndex) (exit code \(execution.runOutput?.exitCode ?? 0)):") }
            let stdout = LockedText()
            try await client.logs(jobID, follow: false, executionID: execution.id) { log in
                if log.type == 1 { stdout.append(log.line + "\n") }
            }
            print(stdout.value, terminator: "")
            if executions.count == 1, let code = execution.runOutput?.exitCode, code != 0 {
                print("(exit code \(code))")
            }
        }
    }
}

final class LockedText: @unchecked Sendable {
    private let lock = NSLock()
    private var text = ""
    func append(_ more: String) { lock.withLock { text += more } }
    var value: String { lock.withLock { text } }
}

/// Downloads a job's results into Bacalhau's layout: `stdout`, `stderr`, `exitCode` and one
/// folder per result name, merged across partitions.
struct ResultDownloader {
    let client: CodClient

    /// The CID of a job's one result (a reduce's output, or partitions merged), if it has one.
    static func singleCID(_ results: [SpecConfig]) -> String? {
        guard results.count == 1, results[0].normalizedType == "ipfs" else { return nil }
        return results[0].params["CID"]?.stringValue
    }

    /// Downloads the job's results; returns what it downloaded (empty when there are none).
    func download(jobID: String, into output: URL, keepRaw: Bool) async throws -> [SpecConfig] {
        let results = try await client.results(jobID)
        guard !results.isEmpty else { return [] }
        let fm = FileManager.default
        try fm.createDirectory(at: output, withIntermediateDirectories: true)
        let raw = output.appendingPathComponent("raw")
        var stdout = Data()
        var stderr = Data()
        var exitCode = ""
        for result in results {
            // The server names the folder: only a plain identifier may become a path.
            let executionID = result.params["ExecutionID"]?.stringValue ?? UUID().uuidString
            guard executionID.count <= 128, executionID.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]*$", options: .regularExpression) != nil
            else {
                throw CLIFailure("the server sent an invalid execution ID \"\(executionID.prefix(64))\"; refusing to use it as a folder name")
            }
            let folder = raw.appendingPathComponent(executionID)
            if result.normalizedType == "ipfs", let cid = result.params["CID"]?.stringValue {
                // Fetched as a CAR and verified block by block before anything is written.
                let scratch = try DataCommand.Scratch()
                let root = try await DataCommand.fetchVerified(cid, client: client, into: scratch)
                try Exporter(store: scratch.store).extract(root, to: folder)
            } else {
                guard let url = result.params["URL"]?.stringValue else { continue }
                try await downloadTarball(url, expected: result.params["SHA256"]?.stringValue, into: folder)
            }
            stdout.append((try? Data(contentsOf: folder.appendingPathComponent("stdout"))) ?? Data())
            stderr.append((try? Data(contentsOf: folder.appendingPathComponent("stderr"))) ?? Data())
            exitCode = (try? String(contentsOf: folder.appendingPathComponent("exitCode"), encoding: .utf8)) ?? exitCode
            for item in try fm.contentsOfDirectory(atPath: folder.path) where !["stdout", "stderr", "exitCode"].contains(item) {
                try merge(folder.appendingPathComponent(item), into: output.appendingPathComponent(item))
            }
        }
        try stdout.write(to: output.appendingPathComponent("stdout"))
        try stderr.write(to: output.appendingPathComponent("stderr"))
        try exitCode.write(to: output.appendingPathComponent("exitCode"), atomically: true, encoding: .utf8)
        if !keepRaw { try fm.removeItem(at: raw) }
        return results
    }

    /// A `local` publisher's tarball, checked against its SHA-256.
    func downloadTarball(_ url: String, expected: String?, into folder: URL) async throws {
        let bytes = try await client.download(url)
        if let expected, !expected.isEmpty {
            let actual = SHA256.hash(data: bytes).hexString
            guard actual == expected else {
                throw CLIFailure("result at \(url) is corrupt: SHA-256 \(actual), expected \(expected)")
            }
        }
        try Tar.extract(try Gzip.decompress(bytes), into: folder)
    }

    /// Copies a tree into place; files from later partitions replace earlier ones of the same
    /// name, as Bacalhau's merge does.
    ///
    /// Links are never followed: a folder replaces a link of the same name rather than being
    /// merged through it (a link from one partition could otherwise steer another's files).
    func merge(_ source: URL, into destination: URL) throws {
        let fm = FileManager.default
        let sourceType = (try? fm.attributesOfItem(atPath: source.path)[.type]) as? FileAttributeType
        let destinationType = (try? fm.attributesOfItem(atPath: destination.path)[.type]) as? FileAttributeType
        if sourceType == .typeDirectory {
            if let destinationType, destinationType != .typeDirectory { try fm.removeItem(at: destination) }
            try fm.createDirectory(at: destination, withIntermediateDirectories: true)
            for item in try fm.contentsOfDirectory(atPath: source.path) {
                try merge(source.appendingPathComponent(item), into: destination.appendingPathComponent(item))
            }
        } else {
            if destinationType != nil { try fm.removeItem(at: destination) }
            try fm.copyItem(at: source, to: destination)
        }
    }
}
