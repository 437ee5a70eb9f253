import Foundation
import Hummingbird
import Models
import NodeAPI
import StateStore
import Wire

/// `/api/v1/orchestrator/accounts` and `/ledger`: balances and the entries behind them. A user
/// sees its own account and the entries that touch it; an admin sees every account, deposits
/// into users' accounts and pays nodes' earnings out.
struct LedgerRoutes {
    let database: AppDatabase

    /// The account a path names, which the caller must be allowed to see.
    static func account(_ text: String, _ context: OrchestratorContext) throws -> AccountID {
        let decoded = text.removingPercentEncoding ?? text
        guard let account = AccountID(decoded) else {
            throw CodError(
                .badRequest, "\(decoded.prefix(120)) is not an account",
                hint: "accounts are user:NAME, node:ID, hold:JOB-ID or external")
        }
        try visible(account, context)
        return account
    }

    static func visible(_ account: AccountID, _ context: OrchestratorContext) throws {
        guard let principal = context.principal else { throw CodError(.unauthorized, "accounts need credentials") }
        guard principal.isAdmin || account == .user(principal.name) else {
            throw CodError(
                .forbidden, "user \(principal.name) may see only its own account (user:\(principal.name)), not \(account)",
                hint: "an admin sees every account")
        }
    }

    var collection: RouteCollection<OrchestratorContext> {
        let routes = RouteCollection(context: OrchestratorContext.self)
        let database = self.database
        routes.get("/accounts") { _, context in
            guard let principal = context.principal else { throw CodError(.unauthorized, "accounts need credentials") }
            let accounts = principal.isAdmin
                ? try await database.accounts() : [try await database.account(.user(principal.name))]
            return try APIResponse.json(ListResponse(items: accounts))
        }
        routes.get("/accounts/:id") { _, context in
            try APIResponse.json(try await database.account(try Self.account(try context.parameters.require("id"), context)))
        }
        for kind in [LedgerEntry.Kind.deposit, .payout] {
            routes.post("/accounts/:id/\(kind.rawValue.lowercased())") { request, context in
                let account = try Self.account(try context.parameters.require("id"), context)
                let body = try await request.body.collect(upTo: 64 << 10)
                let transfer = try RequestDecoding.decode(AccountTransferRequest.self, json: Data(buffer: body))
                let memo = transfer.memo.isEmpty ? "by \(context.principal?.name ?? "admin")" : String(transfer.memo.prefix(500))
                return try APIResponse.json(
                    try await database.transfer(kind, account: account, amount: transfer.amount, memo: memo, now: nowNanos()))
            }
        }
        routes.get("/ledger") { request, context in
            guard let principal = context.principal else { throw CodError(.unauthorized, "the ledger needs credentials") }
            let query = request.uri.queryParameters
            var account = try query.get("account").map { try Self.account(String($0), context).description }
            var jobID: String?
            var ownJob = false
            if let reference = query.get("job") {
                let id = try await database.resolveJobID(String(reference))
                jobID = id
                ownJob = try await database.job(id: id).map(principal.maySeeSecrets) ?? false
            }
            // A user reads its own jobs' entries and those that touch its own account.
            if !principal.isAdmin, !ownJob { account = AccountID.user(principal.name).description }
            let limit = min(max(Int(query.get("limit") ?? "") ?? 1000, 1), 10_000)
            let entries = try await database.ledger(
                jobID: jobID, account: account, after: Int64(query.get("after") ?? "") ?? 0, limit: limit)
            return try APIResponse.json(ListResponse(items: entries, nextToken: entries.count == limit ? String(entries.last?.seq ?? 0) : ""))
        }
        return routes
    }
}
