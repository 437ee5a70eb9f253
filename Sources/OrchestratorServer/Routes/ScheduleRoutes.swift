import Foundation
import Hummingbird
import Models
import NodeAPI
import Wire

/// `/api/v1/orchestrator/schedules`: create, read, fire, suspend and delete schedules. Reading
/// needs `read:job` in the schedule's namespace, changing it `write:job` there, and only its
/// owner or an admin changes one (its jobs spend its owner's credits).
struct ScheduleRoutes {
    let orchestrator: Orchestrator

    /// A schedule spec is a job template plus a few fields.
    static let maxBodyBytes = 1 << 20
    static let maxWebhookBytes = 1 << 20

    var collection: RouteCollection<OrchestratorContext> {
        let routes = RouteCollection(context: OrchestratorContext.self)
        let orchestrator = self.orchestrator
        routes.put("/schedules") { request, context in
            let body = try await request.body.collect(upTo: Self.maxBodyBytes)
            let spec = try RequestDecoding.decode(ScheduleSpec.self, json: Data(buffer: body))
            return try APIResponse.json(try await orchestrator.putSchedule(spec, owner: context.principal))
        }
        routes.get("/schedules") { _, context in
            try APIResponse.json(ListResponse(items: try await orchestrator.schedules(for: context.principal)))
        }
        routes.get("/schedules/:id") { _, context in
            try APIResponse.json(try await orchestrator.describeSchedule(try context.parameters.require("id"), for: context.principal))
        }
        routes.get("/schedules/:id/runs") { request, context in
            let limit = min(max(Int(request.uri.queryParameters.get("limit") ?? "") ?? 100, 1), 10_000)
            let runs = try await orchestrator.scheduleRuns(try context.parameters.require("id"), for: context.principal, limit: limit)
            return try APIResponse.json(ListResponse(items: runs))
        }
        routes.delete("/schedules/:id") { _, context in
            let id = try context.parameters.require("id")
            try await orchestrator.deleteSchedule(id, by: context.principal)
            return try APIResponse.json(["Deleted": id])
        }
        routes.post("/schedules/:id/trigger") { _, context in
            let runs = try await orchestrator.triggerSchedule(try context.parameters.require("id"), by: context.principal)
            return try APIResponse.json(ScheduleRunsResponse(runs: runs))
        }
        for (action, suspended) in [("suspend", true), ("resume", false)] {
            routes.post("/schedules/:id/\(action)") { _, context in
                try APIResponse.json(try await orchestrator.setSuspended(try context.parameters.require("id"), suspended, by: context.principal))
            }
        }
        routes.post("/schedules/:id/webhook") { request, context in
            let body = try await request.body.collect(upTo: Self.maxWebhookBytes)
            let runs = try await orchestrator.webhook(
                try context.parameters.require("id"), body: Data(buffer: body), signature: request.headers[.init("X-Cod-Signature")!],
                delivery: request.headers[.init("X-Cod-Delivery")!])
            return try APIResponse.json(ScheduleRunsResponse(runs: runs))
        }
        routes.post("/schedules/:id/backfill") { request, context in
            let body = try await request.body.collect(upTo: 1 << 16)
            let range = try RequestDecoding.decode(BackfillRequest.self, json: Data(buffer: body))
            let runs = try await orchestrator.backfill(
                try context.parameters.require("id"), from: range.from, to: range.to, by: context.principal)
            return try APIResponse.json(ScheduleRunsResponse(runs: runs))
        }
        return routes
    }
}
