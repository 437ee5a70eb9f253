import APIClient
import ArgumentParser
import Foundation
import JobSpec
import Models
import Wire

/// Reading a job file (or standard input) for `job run` and `job estimate`.
enum JobFile {
    /// The file's job with the verification flags applied, validated as the orchestrator will.
    static func prepared(_ file: String, _ verification: VerificationOptions) throws -> Job {
        var job = try read(file)
        try verification.apply(to: &job)
        return try JobSpecParser.prepare(job)
    }

    static func read(_ file: String) throws -> Job {
        let text: String
        if file == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CLIFailure("cannot read job file \(file): no such file or not readable")
            }
            text = String(decoding: data, as: UTF8.self)
        }
        return try JobSpecParser.parse(text)
    }
}

/// Printing an estimate, and getting one from a sample run.
enum EstimateOutput {
    static func table(_ estimate: JobEstimate) -> String {
        let bytes = { (value: Double) in ResourceParsing.formatBytes(UInt64(max(value, 0).rounded())) }
        var text = "Basis: \(estimate.basis.rawValue.lowercased()), \(estimate.basisDetail)\n\n"
        text += Output.table(
            ["PARTITION", "NODE", "INPUT", "CPU P50", "CPU P90", "MOVED P50", "COST P50", "COST P90", "WORST CASE"],
            estimate.parts.map { part in
                [part.partition < 0 ? "reduce" : String(part.partition), part.nodeID.map(shortID) ?? "-",
                 part.inputBytes.map(ResourceParsing.formatBytes) ?? "-",
                 part.basis == .request ? "-" : Output.seconds(part.cpuSeconds.p50), part.basis == .request ? "-" : Output.seconds(part.cpuSeconds.p90),
                 part.basis == .request ? "-" : bytes(part.bytesMoved.p50),
                 Output.credits(part.cost.p50), Output.credits(part.cost.p90), Output.credits(part.worstCase)]
                    + (part.speedFactor != 1 ? [String(format: "node speed x%.2f", part.speedFactor)] : [])
            })
        text += "\n\nTotal: \(Output.credits(estimate.cost.p50)) expected (P50), \(Output.credits(estimate.cost.p90)) at the P90, "
        text += "\(Output.credits(estimate.worstCase)) at worst; submitting holds \(Output.credits(estimate.hold))."
        if estimate.basis == .request {
            text += "\nNothing ran yet to estimate from: the figures are the worst case. cod job estimate --sample runs partition 0 first."
        }
        return text
    }

    /// Runs `job`'s first partition, waits for it, and estimates the whole job from it.
    static func sampled(_ job: Job, client: CodClient, quiet: Bool) async throws -> JobEstimate {
        let id = try await client.submitSample(job)
        if !quiet { FileHandle.standardError.write(Data("Running partition 0 as sample job \(id)...\n".utf8)) }
        var revision: UInt64 = 0
        while true {
            let current = try await client.wait(id, afterRevision: revision, timeoutSeconds: 30)
            revision = current.revision
            guard current.state.stateType.isTerminal else { continue }
            guard current.state.stateType == .completed else {
                throw CLIFailure("the sample job \(id) ended \(current.state.stateType.rawValue.lowercased()): \(current.state.message)")
            }
            return try await client.estimate(job, sampleJobID: id)
        }
    }
}

extension JobCommand {
    struct Estimate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Estimate what a job file would use and cost before running it: per partition and in total, P50 and P90.",
            discussion: """
                The estimate rests on earlier runs of the same program (engine, artifact, entrypoint,
                arguments), scaled by each partition's input size where it is known, on the nodes the
                scheduler would pick now, at their prices. A node with 10 runs of the program gets its
                own speed factor. With --sample, partition 0 runs first (a job that is charged like any
                other) and the estimate scales from it. With neither, the figures are the worst case.
                """)
        @Argument(help: "The job spec file, or - to read standard input.") var file: String
        @Flag(help: "Run partition 0 first and estimate from it.") var sample = false
        @OptionGroup var verification: VerificationOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let job = try JobFile.prepared(file, verification)
            let client = try await global.client()
            let estimate = sample
                ? try await EstimateOutput.sampled(job, client: client, quiet: global.output != .table)
                : try await client.estimate(job)
            try global.print(estimate) { print(EstimateOutput.table(estimate)) }
        }
    }
}
