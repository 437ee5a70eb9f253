@testable import CodTestKit
import Foundation
import Models
import Testing
import Wire

/// Metering through a devstack with every engine: what `job describe` and the signed receipt
/// say an execution used, against what the program itself and the kernel saw.
@Suite("Metering every engine (separate processes)", .serialized)
struct MeteringTests {
    /// Runs a job to its end and returns its one execution.
    func execution(_ stack: DevstackProcess, _ arguments: [String]) async throws -> Execution {
        let run = try await stack.cod(arguments)
        #expect(run.status == 0, "\(arguments): \(run.stderr)")
        let job = try await describe(stack, jobID(run))
        let execution = try #require(job.executions?.items.first { $0.computeState.stateType == .completed }, "\(job.job.state.message)")
        return execution
    }

    /// The children's CPU seconds a shell's `times` printed (its second line, user + system).
    func childrenCPU(_ stdout: String) -> Double? {
        guard let line = stdout.split(separator: "\n").last(where: { $0.contains("m") && $0.contains("s") }) else { return nil }
        let values = line.split(separator: " ").compactMap { field -> Double? in
            let parts = field.split(separator: "m")
            guard parts.count == 2, let minutes = Double(parts[0]), let seconds = Double(parts[1].dropLast()) else { return nil }
            return minutes * 60 + seconds
        }
        return values.count == 2 ? values[0] + values[1] : nil
    }

    @Test func aBusyLoopAtHalfACoreIsMeteredByEveryEngine() async throws {
        let stack = try await EngineStack.shared.get()
        // Two seconds of a busy loop under a 0.5 CPU limit: about 1.0 CPU second, never more
        // than the limit allows; the shell's own account of its children agrees.
        let loop = "timeout 2 sh -c 'while :; do :; done'; times"
        let runs: [(String, [String])] = [
            ("process", ["exec", "--id-only", "--cpu", "0.5", "--", "sh", "-c", loop]),
            ("docker", ["docker", "run", "--id-only", "--cpu", "0.5", PodmanService.image, "--", "sh", "-c", loop]),
            ("wasm", ["wasm", "run", "--id-only", "--cpu", "0.5", try Paths.fixture("busy"), "-e", "SECONDS=2"]),
        ]
        for (engine, arguments) in runs {
            let execution = try await execution(stack, arguments)
            let usage = try #require(execution.usage, "\(engine): no usage")
            let cpu = try #require(usage.cpuSeconds, "\(engine): CPU not measured (\(usage.meteredBy ?? "-"))")
            #expect(cpu > 0.3, "\(engine): \(cpu) CPU s for a 2 s busy loop")
            #expect(cpu <= usage.wallSeconds * 0.5 * 1.15 + 0.1, "\(engine): \(cpu) CPU s in \(usage.wallSeconds) s at 0.5 CPU")
            if engine != "wasm" {
                let own = try #require(childrenCPU(execution.runOutput?.stdout ?? ""), "\(engine): \(execution.runOutput?.stdout ?? "")")
                #expect(abs(cpu - own) <= own * 0.15 + 0.05, "\(engine): metered \(cpu) CPU s, the shell counted \(own)")
            }
            #expect(usage.meteredBy != nil && usage.gpuSeconds == 0)
            // The signed receipt carries the same figures.
            let receipts = try await stack.cod("job", "receipts", execution.jobID, "--output", "json")
            let stored = try JSONDecoder().decode(JobReceiptsResponse.self, from: Data(receipts.stdout.utf8)).executions
            let text = try #require(stored.first?.envelope, "\(engine): no receipt")
            let bytes = try #require(Data(base64Encoded: text))
            let envelope = try DSSEEnvelope.decode(bytes)
            let payload = try #require(Data(base64Encoded: envelope.payload))
            let receipt = try JSONDecoder().decode(ExecutionReceipt.self, from: payload)
            #expect(receipt.usage.cpuSeconds == cpu && receipt.usage.bytesPublished == usage.bytesPublished, "\(engine)")
        }
    }

    @Test func aHundredMebibyteAllocationShowsInThePeak() async throws {
        let stack = try await EngineStack.shared.get()
        let copy = ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=100M count=1 2>&1"]
        let runs: [(String, [String])] = [
            ("process", ["exec", "--id-only", "--memory", "512Mb", "--"] + copy),
            ("docker", ["docker", "run", "--id-only", "--memory", "512Mb", PodmanService.image, "--"] + copy),
            ("wasm", ["wasm", "run", "--id-only", "--memory", "512Mb", try Paths.fixture("hog"), "-e", "MEGABYTES=100"]),
        ]
        for (engine, arguments) in runs {
            let execution = try await execution(stack, arguments)
            let usage = try #require(execution.usage, "\(engine): no usage")
            let peak = try #require(usage.peakMemoryBytes, "\(engine): memory not measured (\(usage.meteredBy ?? "-"))")
            #expect(peak >= 100 << 20, "\(engine): peak \(peak) bytes for a 100 MiB buffer")
            #expect(peak < 512 << 20, "\(engine): peak \(peak) bytes above the limit")
            #expect((usage.memoryGiBSeconds ?? 0) > 0 && usage.bytesPublished > 0, "\(engine): \(usage)")
        }
    }
}
