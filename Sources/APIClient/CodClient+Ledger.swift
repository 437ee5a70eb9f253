import AsyncHTTPClient
public import Models
import Wire

extension CodClient {
    /// One account's balance (`user:NAME`, `node:ID`, `hold:JOB`); a user may read its own.
    public func account(_ id: String) async throws -> Account {
        try await get("/api/v1/orchestrator/accounts/\(escape(id))")
    }

    /// Every account (an admin's view), or the caller's own.
    public func accounts() async throws -> [Account] {
        let response: ListResponse<Account> = try await get("/api/v1/orchestrator/accounts")
        return response.items
    }

    /// An admin's deposit into a user's account, or payout of a node's earnings.
    public func transfer(_ kind: LedgerEntry.Kind, account: String, amount: Int64, memo: String = "") async throws -> Account {
        try await send(
            .POST, "/api/v1/orchestrator/accounts/\(escape(account))/\(kind.rawValue.lowercased())",
            body: AccountTransferRequest(amount: amount, memo: memo))
    }

    /// Ledger entries in order, of one job or touching one account, every page.
    public func ledger(job: String? = nil, account: String? = nil) async throws -> [LedgerEntry] {
        var entries: [LedgerEntry] = []
        var after: Int64 = 0
        while true {
            var query = "after=\(after)"
            if let job { query += "&job=\(escape(job))" }
            if let account { query += "&account=\(escape(account))" }
            let page: ListResponse<LedgerEntry> = try await get("/api/v1/orchestrator/ledger?\(query)")
            entries += page.items
            guard !page.nextToken.isEmpty, let next = Int64(page.nextToken), next > after else { return entries }
            after = next
        }
    }
}

extension CodClient {
    /// What `job` would use and cost if submitted now; from a sample run's usage when
    /// `sampleJobID` names one.
    public func estimate(_ job: Job, sampleJobID: String? = nil) async throws -> JobEstimate {
        let response: EstimateJobResponse = try await send(
            .POST, "/api/v1/orchestrator/jobs/estimate", body: EstimateJobRequest(job: job, sampleJobID: sampleJobID))
        guard let estimate = response.estimate else { throw CodError(.internalError, "the orchestrator answered no estimate") }
        return estimate
    }

    /// Submits `job`'s first partition as a sample run to estimate from; returns its job ID.
    public func submitSample(_ job: Job) async throws -> String {
        let response: EstimateJobResponse = try await send(
            .POST, "/api/v1/orchestrator/jobs/estimate", body: EstimateJobRequest(job: job, sample: true))
        guard let id = response.sampleJobID else { throw CodError(.internalError, "the orchestrator started no sample job") }
        return id
    }

    /// What a stored job was expected to cost when it was submitted.
    public func estimate(ofJob id: String) async throws -> JobEstimate {
        let response: EstimateJobResponse = try await get("/api/v1/orchestrator/jobs/\(escape(id))/estimate")
        guard let estimate = response.estimate else { throw CodError(.internalError, "the orchestrator answered no estimate") }
        return estimate
    }
}
