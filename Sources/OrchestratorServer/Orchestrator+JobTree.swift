import Foundation
public import Models
import StateStore
public import Wire

/// Jobs that start jobs: a running execution's key submits children, held to its job's
/// `Children` limits; a tree is read by its links; a parent that is stopped or fails takes its
/// unfinished children with it unless it let them go (`CancelWithParent: false`).
extension Orchestrator {
    /// Submits `prepared` as a child of the execution the key belongs to: linked to it, in its
    /// namespace, owned by its owner, named under it (so it never updates another job), with
    /// limits no deeper than the parent's allow, and checked against them in the transaction
    /// that stores it.
    func submitChild(_ prepared: Job, of scope: ExecutionScope) async throws -> PutJobResponse {
        guard let parent = try await database.job(id: scope.jobID), let limits = parent.children else {
            throw CodError(.forbidden, "job \(shortID(scope.jobID)) may not start children", hint: "add Children to the parent's spec")
        }
        guard limits.maxDepth >= 1 else {
            let depth = try await depth(of: parent) + 1
            throw CodError(
                .badRequest,
                "Children.MaxDepth: job \(shortID(parent.id)) is as deep as its tree may go; a child would be \(depth) levels below the top",
                hint: "raise MaxDepth at the top of the tree (each level allows one less below it)")
        }
        var job = prepared
        job.namespace = parent.namespace
        job.owner = parent.owner
        job.parentJobID = parent.id
        job.parentExecutionID = scope.executionID
        job.children = job.children?.within(limits)
        job.name = String("\(parent.name)/\(prepared.name.isEmpty ? "child" : prepared.name)".prefix(256))
        var ids = Self.newIDs()
        let now = nowNanos()
        Self.makeFirstVersion(&job, id: ids.jobID(), now: now)
        let evaluation = Self.evaluation(of: job, trigger: .jobRegister, now: now, ids: &ids)
        let event = JobHistory(
            type: .job, jobID: job.id, jobVersion: job.version,
            event: Event(
                message: "Job submitted by job \(shortID(parent.id)) (execution \(shortID(scope.executionID)))", topic: "Submission",
                timestamp: now, details: ["NewState": "Pending", "ParentJobID": parent.id]),
            time: now)
        try await database.createChildJob(job, of: parent, limits: limits, evaluation: evaluation, event: event, hold: try await hold(for: job))
        await broker.enqueue(evaluation)
        return PutJobResponse(jobID: job.id, evaluationID: evaluation.id, warnings: [])
    }

    /// How many levels `job` sits below the top of its tree.
    func depth(of job: Job) async throws -> Int {
        var depth = 0
        var current = job
        while let parentID = current.parentJobID, depth <= ChildLimits.deepest, let parent = try await database.job(id: parentID) {
            depth += 1
            current = parent
        }
        return depth
    }

    /// A job's children, for a caller who may read the job.
    public func children(of reference: String) async throws -> [Job] {
        try await database.children(of: try await database.resolveJobID(reference))
    }

    /// Stops the unfinished children of parents that were stopped or failed, level by level
    /// (a stopped child's own children are found by the next round). Called after a stop and
    /// by the schedule loop, so a parent that failed or timed out is covered too.
    func stopOrphans() async {
        do {
            for _ in 0...ChildLimits.deepest {
                let orphans = try await database.orphansToStop()
                guard !orphans.isEmpty else { return }
                for (child, parent) in orphans {
                    let reason = "its parent job \(shortID(parent.id)) ended \(parent.state.stateType.rawValue.lowercased()) (Children.CancelWithParent)"
                    _ = try? await stop(jobReference: child, reason: reason, alone: true)
                }
            }
        } catch {
            logger.error("stopping children of ended jobs: \(error)")
        }
    }
}
