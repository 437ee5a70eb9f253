import APIClient
import ArgumentParser
import CodServers
import ComputeNode
import Foundation
import Logging
import Models
import ServiceLifecycle

/// `cod bench docker`: a trivial container job's total time (submit to Completed) on
/// an in-process devstack against running the same image directly with the container CLI, in
/// one run, alternating the two so both see the same machine.
struct DockerBench {
    let image: String
    let dockerHost: String?
    let runs: Int
    let compare: String

    func job(publisher: String) -> Job {
        var task = JobTask(name: "main")
        task.engine = DockerEngineSpec(image: image, parameters: ["true"]).specConfig
        task.publisher = SpecConfig(type: publisher)
        // Unnamed: each submission is a new job (a name would make them versions of one).
        return Job(name: "", type: "batch", count: 1, tasks: [task])
    }

    func run(logger: Logger) async throws {
        var arguments = ["--engines", "docker"]
        if let dockerHost { arguments += ["--docker-host", dockerHost] }
        try await Bench.withDevstack(computes: 1, engineOptions: try EngineOptions.parse(arguments), logger: logger) { client in
            var ready = false
            for _ in 0..<200 where !ready {
                ready = try await client.nodes().contains { $0.connection == .connected && $0.info.computeNodeInfo.executionEngines.contains("docker") }
                if !ready { try await Task.sleep(for: .milliseconds(50)) }
            }
            guard ready else { throw ValidationError("the compute node found no Docker API (set DOCKER_HOST or --docker-host)") }
            try await measure(client: client)
        }
    }

    func measure(client: CodClient) async throws {
        let command = compare.replacingOccurrences(of: "IMAGE", with: image)
        print("cod bench: trivial container job (\(image), command true) against `\(command)`")
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB; \(runs) runs each, alternating\n")
        let noop = job(publisher: "noop")
        let ipfs = job(publisher: "ipfs")
        // Warm up: image layers, the daemon, connections.
        for _ in 0..<2 {
            _ = try await timeJob(noop, client: client)
            _ = try direct(command)
        }
        var cod: [Double] = []
        var codPublished: [Double] = []
        var baseline: [Double] = []
        for _ in 0..<runs {
            baseline.append(try direct(command))
            cod.append(try await timeJob(noop, client: client))
            codPublished.append(try await timeJob(ipfs, client: client))
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] * 1000 }
        func line(_ label: String, _ values: [Double]) -> String {
            let sorted = values.sorted()
            return String(format: "  %@ median %.0f ms   min %.0f ms   max %.0f ms", label, median(values), sorted[0] * 1000, sorted[sorted.count - 1] * 1000)
        }
        print(line("direct CLI run:                          ", baseline))
        print(line("cod job (noop publisher), submit to end: ", cod))
        print(line("cod job (results published as a CID):    ", codPublished))
        print(String(format: "\nOverhead: %.2fx the direct run (noop publisher), %.2fx with the result CID", median(cod) / median(baseline), median(codPublished) / median(baseline)))
    }

    func timeJob(_ job: Job, client: CodClient) async throws -> Double {
        let (seconds, state) = try await Bench.runOne(job, client: client)
        guard state == .completed else { throw ValidationError("a bench job ended \(state.rawValue)") }
        return seconds
    }

    func direct(_ command: String) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let start = ContinuousClock.now
        try process.run()
        process.waitUntilExit()
        let elapsed = (ContinuousClock.now - start).inSeconds
        guard process.terminationStatus == 0 else { throw ValidationError("`\(command)` failed with status \(process.terminationStatus)") }
        return elapsed
    }
}
