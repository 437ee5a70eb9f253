@testable import CodTestKit
import Foundation
import Logging
import Models
@testable import OrchestratorServer
import Testing

/// How the orchestrator follows a plan up: later evaluations keep the job's namespace and
/// priority, and only jobs that wait for capacity or data take wake-ups from the waitlist.
@Suite("Evaluation follow-ups")
struct EvaluationPriorityTests {
    /// Stores a pending noop job and returns its first evaluation.
    static func submit(_ job: inout Job, to orchestrator: Orchestrator) async throws -> Evaluation {
        job.state = JobState(.pending)
        job.version = 1
        job.revision = 1
        let first = Evaluation(
            id: "v-first-\(job.id)", namespace: job.namespace, jobID: job.id, triggeredBy: .jobRegister, priority: job.priority,
            createTime: 1, modifyTime: 1)
        try await orchestrator.database.createJob(job, evaluation: first, event: JobHistory(
            type: .job, jobID: job.id, jobVersion: 1, event: Event(message: "submitted", topic: "Submission", timestamp: 1), time: 1))
        return first
    }

    static func noopJob(_ id: String, priority: Int = 0, cpu: String = "") -> Job {
        var task = JobTask(name: "main", engine: SpecConfig(type: "noop"), publisher: SpecConfig(type: "noop"))
        task.resources.cpu = cpu
        return Job(id: id, name: id, namespace: "team", type: "batch", priority: priority, count: 1, tasks: [task])
    }

    @Test func laterEvaluationsKeepTheJobsNamespaceAndPriority() async throws {
        let orchestrator = try Orchestrator.inScratchFolder("cod-priority")
        var job = Self.noopJob("j-priority", priority: 7)
        _ = try await Self.submit(&job, to: orchestrator)
        await orchestrator.evaluate(jobIDs: [job.id], trigger: .nodeJoin)
        let pending = try await orchestrator.database.pendingEvaluations()
        let joined = try #require(pending.first { $0.triggeredBy == .nodeJoin })
        #expect(joined.priority == 7)
        #expect(joined.namespace == "team")
        #expect(joined.type == "batch")
    }

    /// A placed job with a total timeout gets a timed look at its deadline, but it does not
    /// wait for capacity: it stays off the waitlist that freed capacity serves.
    @Test func aJobWithATotalTimeoutDoesNotWaitForCapacity() async throws {
        let orchestrator = try Orchestrator.inScratchFolder("cod-priority")
        let info = NodeInfo(nodeID: "n-one", computeNodeInfo: ComputeNodeInfo(
            executionEngines: ["noop"], publishers: ["noop"], maxCapacity: Resources(cpu: 1, memory: 1 << 30, disk: 1 << 30)))
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        _ = try await orchestrator.database.handshake(info: info, session: "s", lastOrchestratorSeq: 0, activeExecutions: [], now: now)

        var timed = Self.noopJob("j-timed", cpu: "0.5")
        timed.tasks[0].timeouts.totalTimeout = 600
        timed.createTime = now
        await orchestrator.process([try await Self.submit(&timed, to: orchestrator)])
        #expect(try await orchestrator.database.executions(jobID: timed.id).count == 1)
        #expect(await orchestrator.waitlist.all.isEmpty)

        // A job that does not fit next to it waits for capacity, and is on the list.
        var waiting = Self.noopJob("j-waits", cpu: "1")
        waiting.createTime = now
        await orchestrator.process([try await Self.submit(&waiting, to: orchestrator)])
        #expect(await orchestrator.waitlist.all == [waiting.id])
    }
}
