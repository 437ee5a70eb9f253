import Foundation
import Hummingbird
import Models
import NodeAPI
import StateStore
import Wire

/// `/api/v1/orchestrator/jobs`: submit, list, describe, wait, stop and rerun jobs, and read
/// their executions and history.
struct JobRoutes {
    let orchestrator: Orchestrator

    var collection: RouteCollection<OrchestratorContext> {
        let routes = RouteCollection(context: OrchestratorContext.self)
        let orchestrator = self.orchestrator
        let database = orchestrator.database
        let submit: @Sendable (Request, OrchestratorContext) async throws -> Response = { request, context in
            let body = try await request.body.collect(upTo: orchestrator.config.maxJobBytes)
            let submitted = try RequestDecoding.decode(PutJobRequest.self, json: Data(buffer: body))
            return try APIResponse.json(try await orchestrator.submit(submitted.job, owner: context.principal))
        }
        routes.put("/jobs", use: submit)
        // Cod extension: what a job would use and cost, before it runs.
        routes.post("/jobs/estimate") { request, context in
            let body = try await request.body.collect(upTo: orchestrator.config.maxJobBytes)
            let asked = try RequestDecoding.decode(EstimateJobRequest.self, json: Data(buffer: body))
            if asked.sample {
                return try APIResponse.json(EstimateJobResponse(sampleJobID: try await orchestrator.submitSample(of: asked.job, owner: context.principal)))
            }
            return try APIResponse.json(EstimateJobResponse(
                estimate: try await orchestrator.estimate(asked.job, owner: context.principal, sampleJobID: asked.sampleJobID)))
        }
        // What the job was expected to cost when it was submitted (from the history before it).
        routes.get("/jobs/:id/estimate") { _, context in
            let job = try await JobAccess.job(try context.parameters.require("id"), .readJob, context, database)
            return try APIResponse.json(EstimateJobResponse(
                estimate: try await orchestrator.estimate(job, owner: context.principal, before: job.createTime)))
        }
        routes.post("/jobs", use: submit)

        routes.get("/jobs") { request, context in
            let query = request.uri.queryParameters
            let limit = min(max(Int(query.get("limit") ?? "") ?? 10, 1), 1000)
            let offset = Paging.decodeToken(query.get("next_token"))
            // Only the namespaces the caller may read are listed.
            guard let principal = context.principal else { throw CodError(.unauthorized, "listing jobs needs credentials") }
            var namespaces = principal.namespaces(for: .readJob)
            if let asked = query.get("namespace"), asked != "*" {
                try context.require(.readJob, namespace: String(asked))
                namespaces = [String(asked)]
            }
            let (jobs, more) = try await database.listJobs(
                namespaces: namespaces, limit: limit, offset: offset, newestFirst: query.get("reverse") != "true")
            return try APIResponse.json(ListResponse(items: jobs.map(context.view), nextToken: more ? Paging.encodeToken(offset + limit) : ""))
        }
        routes.get("/jobs/:id") { request, context in
            let job = try await JobAccess.job(try context.parameters.require("id"), .readJob, context, database)
            let id = job.id
            let include = request.uri.queryParameters.get("include") ?? ""
            var response = GetJobResponse(job: context.view(job))
            if include.contains("executions") { response.executions = ListResponse(items: try await database.executions(jobID: id)) }
            if include.contains("history") { response.history = ListResponse(items: try await database.history(jobID: id)) }
            return try APIResponse.json(response)
        }
        // Cod extension: long-poll until the job changes past a revision, or ends.
        routes.get("/jobs/:id/wait") { request, context in
            let id = try await JobAccess.job(try context.parameters.require("id"), .readJob, context, database).id
            let query = request.uri.queryParameters
            let after = UInt64(query.get("revision") ?? "") ?? 0
            let seconds = min(max(Double(query.get("timeout") ?? "") ?? 30, 0), 300)
            let job = try await orchestrator.waitForChange(jobID: id, afterRevision: after, timeout: .milliseconds(Int64(seconds * 1000)))
            return try APIResponse.json(GetJobResponse(job: context.view(job)))
        }
        routes.delete("/jobs/:id") { request, context in
            let reason = request.uri.queryParameters.get("reason") ?? ""
            let id = try await JobAccess.job(try context.parameters.require("id"), .writeJob, context, database).id
            let evaluationID = try await orchestrator.stop(jobReference: id, reason: reason)
            return try APIResponse.json(StopJobResponse(evaluationID: evaluationID))
        }
        routes.put("/jobs/:id/rerun") { request, context in
            let body = try await request.body.collect(upTo: 1 << 16)
            let rerun = body.readableBytes == 0
                ? RerunJobRequest() : try JSONDecoder().decode(RerunJobRequest.self, from: Data(buffer: body))
            let id = try await JobAccess.job(try context.parameters.require("id"), .writeJob, context, database).id
            return try APIResponse.json(try await orchestrator.rerun(jobReference: id, expectedVersion: rerun.jobVersion, reason: rerun.reason ?? ""))
        }
        // Cod extension: the jobs this job started (`cod job tree`).
        routes.get("/jobs/:id/children") { request, context in
            let id = try await JobAccess.job(try context.parameters.require("id"), .readJob, context, database).id
            return try APIResponse.json(Paging.page(try await orchestrator.children(of: id).map(context.view), request))
        }
        routes.get("/jobs/:id/executions") { request, context in
            let id = try await JobAccess.job(try context.parameters.require("id"), .readJob, context, database).id
            return try APIResponse.json(Paging.page(try await database.executions(jobID: id), request))
        }
        routes.get("/jobs/:id/verification") { _, context in
            let job = try await JobAccess.job(try context.parameters.require("id"), .readJob, context, database)
            let executions = try await database.executions(jobID: job.id)
            return try APIResponse.json(VerificationReport.of(job, executions: executions, store: orchestrator.store))
        }
        routes.get("/jobs/:id/receipts") { _, context in
            let job = try await JobAccess.job(try context.parameters.require("id"), .readJob, context, database)
            return try APIResponse.json(try await orchestrator.receipts(of: job))
        }
        routes.get("/jobs/:id/history") { request, context in
            let id = try await JobAccess.job(try context.parameters.require("id"), .readJob, context, database).id
            let query = request.uri.queryParameters
            var items = try await database.history(jobID: id)
            switch query.get("event_type") ?? "all" {
            case "job": items = items.filter { $0.type == .job }
            case "execution": items = items.filter { $0.type == .execution }
            default: break
            }
            if let executionID = query.get("execution_id"), !executionID.isEmpty {
                items = items.filter { $0.executionID.hasPrefix(executionID) }
            }
            return try APIResponse.json(Paging.page(items, request))
        }
        return routes
    }
}

/// Finding a job for a caller: by ID or prefix, then checked against the caller's capability
/// in the job's namespace (403 when it lacks it).
enum JobAccess {
    static func job(_ reference: String, _ action: Action, _ context: OrchestratorContext, _ database: AppDatabase) async throws -> Job {
        let id = try await database.resolveJobID(reference)
        guard let job = try await database.job(id: id) else { throw CodError(.notFound, "job \(reference) not found") }
        try context.require(action, namespace: job.namespace)
        return job
    }
}
