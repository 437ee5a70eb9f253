import Foundation
import Logging
import Models
@testable import OrchestratorServer
import Testing

/// Evaluations the orchestrator makes after the first (a node joined, an execution ended) are
/// built from the job, so they keep its namespace and priority: a high-priority job stays
/// ahead of the queue after its first plan.
@Suite("Evaluation priority")
struct EvaluationPriorityTests {
    @Test func laterEvaluationsKeepTheJobsNamespaceAndPriority() async throws {
        let directory = try Paths.temporaryDirectory("cod-priority")
        let orchestrator = try Orchestrator(config: OrchestratorConfig(dataDirectory: directory, token: "t"), logger: Logger(label: "test"))
        var job = Job(
            id: "j-priority", name: "urgent", namespace: "team", type: "batch", priority: 7, count: 1,
            tasks: [JobTask(name: "main", engine: SpecConfig(type: "noop"), publisher: SpecConfig(type: "noop"))])
        job.state = JobState(.pending)
        job.version = 1
        job.revision = 1
        let first = Evaluation(id: "v-first", namespace: "team", jobID: job.id, triggeredBy: .jobRegister, priority: 7, createTime: 1, modifyTime: 1)
        try await orchestrator.database.createJob(job, evaluation: first, event: JobHistory(
            type: .job, jobID: job.id, jobVersion: 1, event: Event(message: "submitted", topic: "Submission", timestamp: 1), time: 1))
        await orchestrator.evaluate(jobIDs: [job.id], trigger: .nodeJoin)
        let pending = try await orchestrator.database.pendingEvaluations()
        let joined = try #require(pending.first { $0.triggeredBy == .nodeJoin })
        #expect(joined.priority == 7)
        #expect(joined.namespace == "team")
        #expect(joined.type == "batch")
    }
}
