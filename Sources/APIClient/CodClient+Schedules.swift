import AsyncHTTPClient
public import Models
public import Wire

extension CodClient {
    public func putSchedule(_ spec: ScheduleSpec) async throws -> PutScheduleResponse {
        try await send(.PUT, "/api/v1/orchestrator/schedules", body: spec)
    }

    public func schedules() async throws -> [Schedule] {
        let response: ListResponse<Schedule> = try await get("/api/v1/orchestrator/schedules")
        return response.items
    }

    public func describeSchedule(_ reference: String) async throws -> ScheduleDescription {
        try await get("/api/v1/orchestrator/schedules/\(escape(reference))")
    }

    public func scheduleRuns(_ reference: String, limit: Int = 100) async throws -> [ScheduleRun] {
        let response: ListResponse<ScheduleRun> = try await get("/api/v1/orchestrator/schedules/\(escape(reference))/runs?limit=\(limit)")
        return response.items
    }

    public func triggerSchedule(_ reference: String) async throws -> [ScheduleRun] {
        let response: ScheduleRunsResponse = try await send(.POST, "/api/v1/orchestrator/schedules/\(escape(reference))/trigger", body: [String: String]())
        return response.runs
    }

    public func backfillSchedule(_ reference: String, from: Int64, to: Int64) async throws -> [ScheduleRun] {
        let response: ScheduleRunsResponse = try await send(
            .POST, "/api/v1/orchestrator/schedules/\(escape(reference))/backfill", body: BackfillRequest(from: from, to: to))
        return response.runs
    }

    public func setScheduleSuspended(_ reference: String, _ suspended: Bool) async throws -> Schedule {
        try await send(.POST, "/api/v1/orchestrator/schedules/\(escape(reference))/\(suspended ? "suspend" : "resume")", body: [String: String]())
    }

    public func deleteSchedule(_ reference: String) async throws {
        let _: [String: String] = try await send(.DELETE, "/api/v1/orchestrator/schedules/\(escape(reference))", body: [String: String]())
    }
}
