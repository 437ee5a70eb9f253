import Foundation
import JobSpec
import Models

/// An operator's pricing program (`serve --compute --price-script FILE`, Akash's bid scripts):
/// for each execution it reads a JSON description of the work on stdin and prints a price
/// list (YAML or JSON, the keys of `--price-list`) or one number (a price per execution). It
/// runs in a bubblewrap sandbox with no network, no host folders but the system's (read-only),
/// an empty environment, for at most 5 s, with 64 KiB of output read. It may only lower the
/// published list: each rate is capped by it. Whatever goes wrong (a crash, a timeout, output
/// that is no price) the published list is the quote, and the reason is logged.
public struct PriceScript: Sendable {
    public let path: String
    public let ceiling: PriceList
    let bwrap: String
    public static let limit: Duration = .seconds(5)
    static let maxOutput = 64 << 10

    /// Nil, with the reason, when bubblewrap is missing (a script never runs unsandboxed).
    public static func make(path: String, ceiling: PriceList) -> (PriceScript?, String?) {
        guard FileManager.default.isExecutableFile(atPath: path) else { return (nil, "\(path) is not an executable file") }
        guard let bwrap = SandboxExecutor.findExecutable("bwrap") else {
            return (nil, "a price script runs only in a bubblewrap sandbox, and bwrap is not installed")
        }
        return (PriceScript(path: path, ceiling: ceiling, bwrap: bwrap), nil)
    }

    /// What the script is told about one execution.
    struct Request: Encodable {
        var jobID: String
        var executionID: String
        var jobType: String
        var engine: String
        var partition: Int
        var cpu: Double
        var memoryBytes: UInt64
        var gpus: UInt64
        var timeoutSeconds: Int64?
        var meta: [String: String]
        var priceList: PriceList

        enum CodingKeys: String, CodingKey {
            case jobID = "JobID", executionID = "ExecutionID", jobType = "JobType", engine = "Engine", partition = "Partition", cpu = "CPU"
            case memoryBytes = "MemoryBytes", gpus = "GPUs", timeoutSeconds = "TimeoutSeconds", meta = "Meta", priceList = "PriceList"
        }
    }

    /// The quote for one execution: the script's prices capped by the published list, or the
    /// list itself with why the script's answer was not used.
    public func quote(for execution: Execution, job: Job) async -> (quote: PriceList, problem: String?) {
        let request = Request(
            jobID: job.id, executionID: execution.id, jobType: job.type, engine: job.task.engine.normalizedType,
            partition: execution.partitionIndex, cpu: execution.allocatedResources.cpu, memoryBytes: execution.allocatedResources.memory,
            gpus: execution.allocatedResources.gpu, timeoutSeconds: job.task.timeouts.executionDeadline(jobType: job.jobType), meta: job.meta,
            priceList: ceiling)
        do {
            let output = try await run(input: try JSONEncoder().encode(request))
            return (try Self.parse(output).capped(by: ceiling), nil)
        } catch {
            return (ceiling, "the price script \(path) gave no price (\(error)); the published list applies")
        }
    }

    /// A price list, or one number: a flat price per execution.
    static func parse(_ output: String) throws -> PriceList {
        let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
        var problem: String?
        if let flat = Rate.parse(text, problem: &problem) { return PriceList(start: flat) }
        return try PriceListParser.parse(text, source: "its output")
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func run(input: Data) async throws -> String {
        let arguments = ["--unshare-all", "--die-with-parent", "--new-session"] + SandboxExecutor.systemMounts()
            + ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind", path, "/price-script", "--chdir", "/tmp", "--clearenv",
               "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--", "/price-script"]
        let bwrap = self.bwrap
        return try await Task.detached { () throws -> String in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: bwrap)
            process.arguments = arguments
            let stdin = Pipe()
            let stdout = Pipe()
            process.standardInput = stdin
            process.standardOutput = stdout
            process.standardError = FileHandle.nullDevice
            try process.run()
            let pid = process.processIdentifier
            // The deadline kills it (bwrap's --die-with-parent takes the script along).
            let deadline = DispatchWorkItem { kill(pid, SIGKILL) }
            DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(Self.limit.components.seconds)), execute: deadline)
            defer { deadline.cancel() }
            try? stdin.fileHandleForWriting.write(contentsOf: input)
            try? stdin.fileHandleForWriting.close()
            var output = Data()
            let handle = stdout.fileHandleForReading
            while output.count <= Self.maxOutput {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                output.append(chunk)
            }
            if output.count > Self.maxOutput { kill(pid, SIGKILL) }
            process.waitUntilExit()
            guard output.count <= Self.maxOutput else { throw Failure(description: "it printed more than \(Self.maxOutput) bytes") }
            guard process.terminationReason == .exit, process.terminationStatus == 0 else {
                throw Failure(description: process.terminationReason == .uncaughtSignal
                    ? "it was stopped after \(Self.limit.components.seconds) s" : "it exited with status \(process.terminationStatus)")
            }
            return String(decoding: output, as: UTF8.self)
        }.value
    }
}
