import Foundation
import GRDB
public import Models

/// The ledger: every movement of credits as an appended entry from one account to another,
/// with the balances it implies kept beside it in the same transaction. Only the `external`
/// account may go below zero; SQLite's CHECK refuses any other, so no sequence of calls can
/// overspend, and triggers refuse any change to an entry once written.
extension AppDatabase {
    static func registerLedger(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v11-ledger") { db in
            try db.execute(sql: """
                CREATE TABLE accounts (
                    id TEXT PRIMARY KEY NOT NULL,
                    balance INTEGER NOT NULL,
                    CHECK (balance >= 0 OR id = 'external')
                );
                CREATE TABLE ledger (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL,
                    source TEXT NOT NULL REFERENCES accounts(id),
                    target TEXT NOT NULL REFERENCES accounts(id),
                    amount INTEGER NOT NULL CHECK (amount > 0),
                    jobID TEXT,
                    executionID TEXT,
                    receipt TEXT,
                    period INTEGER NOT NULL DEFAULT 0,
                    memo TEXT NOT NULL,
                    time INTEGER NOT NULL
                );
                CREATE INDEX ledgerByJob ON ledger (jobID, seq);
                CREATE INDEX ledgerBySource ON ledger (source, seq);
                CREATE INDEX ledgerByTarget ON ledger (target, seq);
                -- An execution is charged once (a long-running one once per period) and refunded
                -- once; a job holds once and releases once.
                CREATE UNIQUE INDEX ledgerOncePerExecution ON ledger (kind, executionID, period)
                    WHERE executionID IS NOT NULL AND kind IN ('Charge', 'Refund');
                CREATE UNIQUE INDEX ledgerOncePerJob ON ledger (kind, jobID) WHERE kind IN ('Hold', 'Release');
                -- Store-wide settings the transactions read (the charging interval).
                CREATE TABLE settings (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
                CREATE TRIGGER ledgerAppendOnly BEFORE UPDATE ON ledger
                    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
                CREATE TRIGGER ledgerKeepsEntries BEFORE DELETE ON ledger
                    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
                """)
        }
    }

    /// Raised inside a transaction when an account cannot pay; the caller turns it into its own
    /// error (a 402 for a submission) after the rollback.
    struct InsufficientFunds: Error {
        var account: String
        var balance: Int64
        var needed: Int64
    }

    /// An account's balance; nil for one the ledger never touched.
    static func balance(of account: String, _ db: Database) throws -> Int64? {
        try Int64.fetchOne(db, sql: "SELECT balance FROM accounts WHERE id = ?", arguments: [account])
    }

    /// Who filled a job's hold: the account its Hold entry came from; nil for a job that holds
    /// nothing.
    static func payer(ofJob jobID: String, _ db: Database) throws -> AccountID? {
        try String.fetchOne(db, sql: "SELECT source FROM ledger WHERE kind = 'Hold' AND jobID = ?", arguments: [jobID]).flatMap(AccountID.init)
    }

    /// How often long-running jobs are charged, in nanoseconds (written at open).
    static func chargeInterval(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT value FROM settings WHERE key = 'chargeInterval'") ?? 60_000_000_000
    }

    /// Gives back to its payer what a job's hold has left.
    static func release(jobID: String, to payer: AccountID, _ memo: String, now: Int64, _ db: Database) throws {
        guard let remaining = try balance(of: AccountID.hold(job: jobID).description, db), remaining > 0 else { return }
        try post(LedgerEntry(kind: .release, from: .hold(job: jobID), to: payer, amount: remaining, jobID: jobID, memo: memo, time: now), db)
    }

    /// Appends `entry` and moves its amount between the two balances.
    static func post(_ entry: LedgerEntry, _ db: Database) throws {
        precondition(entry.amount > 0, "ledger amounts are positive")
        for account in [entry.from, entry.to] {
            try db.execute(sql: "INSERT OR IGNORE INTO accounts (id, balance) VALUES (?, 0)", arguments: [account])
        }
        try db.execute(
            sql: "UPDATE accounts SET balance = balance - ? WHERE id = ? AND (balance >= ? OR id = 'external')",
            arguments: [entry.amount, entry.from, entry.amount])
        guard db.changesCount == 1 else {
            throw InsufficientFunds(account: entry.from, balance: try balance(of: entry.from, db) ?? 0, needed: entry.amount)
        }
        try db.execute(sql: "UPDATE accounts SET balance = balance + ? WHERE id = ?", arguments: [entry.amount, entry.to])
        try db.execute(
            sql: """
                INSERT INTO ledger (kind, source, target, amount, jobID, executionID, receipt, period, memo, time)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                entry.kind.rawValue, entry.from, entry.to, entry.amount, entry.jobID, entry.executionID, entry.receipt, entry.period,
                entry.memo, entry.time,
            ])
    }

    /// Stores a new job and holds `hold` micro-credits of its owner's for it, in one
    /// transaction: a job is never stored without its hold, nor a hold taken for no job. Not
    /// enough balance is a 402 that names the shortfall, and nothing is stored.
    public func createJob(_ job: Job, evaluation: Evaluation, event: JobHistory, hold: Int64) async throws {
        do {
            try await writer.write { db in try Self.insertJob(job, evaluation: evaluation, event: event, hold: hold, db) }
        } catch let short as InsufficientFunds {
            throw Self.refusal(short)
        }
    }

    /// The 402 a job gets when its owner cannot pay its hold, naming the shortfall.
    static func refusal(_ short: InsufficientFunds) -> CodError {
        CodError(
            .paymentRequired,
            "account \(short.account) has \(short.balance) micro-credits; this job needs a hold of \(short.needed) "
                + "(short by \(short.needed - short.balance))",
            hint: "an admin can add credits (cod account deposit \(short.account) AMOUNT), or set a lower Budget.Max, "
                + "a shorter Timeouts.ExecutionTimeout or fewer resources")
    }

    static func insertJob(_ job: Job, evaluation: Evaluation, event: JobHistory, hold: Int64, _ db: Database) throws {
        try insert(job: job, db)
        try insert(evaluation: evaluation, db)
        try append(event, db)
        guard hold > 0 else { return }
        try post(
            LedgerEntry(
                kind: .hold, from: AccountID.owner(of: job), to: .hold(job: job.id), amount: hold, jobID: job.id,
                memo: "the most job \(job.name) may cost", time: job.createTime), db)
    }

    /// Pays what the job's executions cost from its hold, and gives the rest back once the job
    /// has ended and none of its executions still runs. Safe to call at any time and again:
    /// an execution is charged once (a unique index), and only once its usage is known and,
    /// for a verified job, its result was not found wrong. Charges never exceed the hold, nor a
    /// partition's Budget.MaxPerPartition. Jobs that hold nothing are not in the ledger.
    static func settle(jobID: String, now: Int64, _ db: Database) throws {
        guard var remaining = try balance(of: AccountID.hold(job: jobID).description, db), let payer = try payer(ofJob: jobID, db),
            let job = try fetchJob(jobID, db)
        else { return }
        let executions = try fetchExecutions(jobID: jobID, db)
        let ended = job.state.stateType.isTerminal
        // A verified job's replica is paid once the quorum decided about it: a wrong result is
        // never paid. A completed job compares even results that come after its acceptance;
        // one that failed or was stopped decides no more, and pays what ran undecided.
        let awaitsVerdict = { (execution: Execution) in
            job.isVerified && !execution.isAudit && execution.verdict == nil && execution.computeState.stateType == .completed
                && (!ended || job.state.stateType == .completed)
        }
        if job.jobType.isLongRunning {
            try chargeByTime(job, executions, remaining: &remaining, now: now, db)
        } else {
            try chargeUsage(job, executions, remaining: &remaining, awaitsVerdict: awaitsVerdict, now: now, db)
        }
        guard ended, executions.allSatisfy({ $0.computeState.stateType.isTerminal && !awaitsVerdict($0) }) else { return }
        try release(jobID: jobID, to: payer, "what job \(job.name) held and did not spend", now: now, db)
    }

    /// A batch job pays each execution's metered cost once it is known and payable, at most
    /// what the hold and the partition's budget have left.
    static func chargeUsage(
        _ job: Job, _ executions: [Execution], remaining: inout Int64, awaitsVerdict: (Execution) -> Bool, now: Int64, _ db: Database
    ) throws {
        let jobID = job.id
        let charged = Dictionary(
            try Row.fetchAll(db, sql: "SELECT executionID, amount FROM ledger WHERE jobID = ? AND kind = 'Charge'", arguments: [jobID])
                .map { (row: Row) -> (String, Int64) in (row["executionID"], row["amount"]) }, uniquingKeysWith: +)
        var spent: [Int: Int64] = [:]
        for execution in executions { spent[execution.partitionIndex, default: 0] += charged[execution.id] ?? 0 }
        for execution in executions where charged[execution.id] == nil && remaining > 0 {
            guard let cost = execution.cost, cost > 0, execution.computeState.stateType.isTerminal, execution.verdict != .invalid,
                !awaitsVerdict(execution)
            else { continue }
            var amount = min(cost, remaining)
            if let cap = job.budget?.maxPerPartition { amount = min(amount, max(cap - spent[execution.partitionIndex, default: 0], 0)) }
            guard amount > 0 else { continue }
            try post(
                LedgerEntry(
                    kind: .charge, from: .hold(job: jobID), to: .node(execution.nodeID), amount: amount, jobID: jobID,
                    executionID: execution.id, receipt: execution.receipt,
                    memo: amount < cost ? "costs \(cost), capped by the job's budget" : "its metered usage at its node's quoted prices",
                    time: now), db)
            remaining -= amount
            spent[execution.partitionIndex, default: 0] += amount
        }
    }

    /// A long-running job (service, daemon) pays for the time its executions hold their
    /// resources, at their quotes, one entry per `chargeInterval` each (period 1, 2, ...) and a
    /// last one for the part period when the execution ends (period -1). Each entry is the
    /// difference of the exact cumulative cost, so the periods add up to the cost of the whole
    /// time, rounded once. What the hold cannot cover is not charged; the job is stopped
    /// (``longRunningJobsOutOfCredit(now:)``).
    static func chargeByTime(_ job: Job, _ executions: [Execution], remaining: inout Int64, now: Int64, _ db: Database) throws {
        let interval = try chargeInterval(db)
        for execution in executions where remaining > 0 {
            // From its placement its resources are its own on the node.
            guard let quote = execution.quote else { continue }
            let periods = try Int64.fetchAll(
                db, sql: "SELECT period FROM ledger WHERE kind = 'Charge' AND executionID = ?", arguments: [execution.id])
            if periods.contains(-1) { continue }
            let terminal = execution.computeState.stateType.isTerminal
            let end = terminal ? execution.modifyTime : now
            let held = max(end - execution.createTime, 0)
            var last = periods.max() ?? 0
            let complete = held / interval
            var steps: [(period: Int64, upTo: Int64)] = []
            if complete > last { steps += (last + 1...complete).map { ($0, $0 * interval) } }
            if terminal { steps.append((-1, held)) }
            for step in steps where remaining > 0 {
                let before = TimeCharge.cumulative(quote, execution.allocatedResources, nanos: last * interval)
                let after = TimeCharge.cumulative(quote, execution.allocatedResources, nanos: step.upTo)
                last = step.period
                let amount = min(max(after - before, 0), remaining)
                guard amount > 0 else { continue }
                try post(
                    LedgerEntry(
                        kind: .charge, from: .hold(job: job.id), to: .node(execution.nodeID), amount: amount, jobID: job.id,
                        executionID: execution.id, receipt: execution.receipt, period: step.period,
                        memo: step.period < 0 ? "its last part period of holding its resources" : "period \(step.period) of holding its resources",
                        time: now), db)
                remaining -= amount
            }
        }
    }

    /// Long-running jobs whose hold cannot pay for the next period of the executions they run,
    /// after charging what is due: they are to be stopped. Returns each with the reason.
    public func longRunningJobsOutOfCredit(now: Int64) async throws -> [(jobID: String, reason: String)] {
        // Read first: most of the time no long-running job holds anything, and nothing is written.
        let held = try await writer.read { db in
            try String.fetchAll(
                db, sql: """
                    SELECT l.jobID FROM ledger l JOIN jobs j ON j.id = l.jobID
                    WHERE l.kind = 'Hold' AND j.state IN ('Pending', 'Queued', 'Running')
                    """
            ).filter { try Self.fetchJob($0, db)?.jobType.isLongRunning == true }
        }
        guard !held.isEmpty else { return [] }
        return try await writer.write { db in
            let interval = try Self.chargeInterval(db)
            var out: [(String, String)] = []
            for jobID in held {
                guard let job = try Self.fetchJob(jobID, db), !job.state.stateType.isTerminal else { continue }
                try Self.settle(jobID: jobID, now: now, db)
                let remaining = try Self.balance(of: AccountID.hold(job: jobID).description, db) ?? 0
                let next = try Self.fetchExecutions(jobID: jobID, db).filter { !$0.computeState.stateType.isTerminal }.reduce(Int64(0)) { sum, execution in
                    guard let quote = execution.quote else { return sum }
                    // A period past the first (which also carries the start price).
                    return sum + TimeCharge.cumulative(quote, execution.allocatedResources, nanos: 2 * interval)
                        - TimeCharge.cumulative(quote, execution.allocatedResources, nanos: interval)
                }
                if next > remaining {
                    out.append((jobID, "its hold ran out: \(remaining) micro-credits left, the next period of its executions costs \(next) (Budget.Max)"))
                }
            }
            return out
        }
    }

    /// Gives back what a node was paid for an execution whose result was later found wrong
    /// (an audit overturned it), as far as the node still holds it.
    static func refund(_ execution: Execution, now: Int64, _ db: Database) throws {
        guard let paid = try Int64.fetchOne(
            db, sql: "SELECT amount FROM ledger WHERE kind = 'Charge' AND executionID = ?", arguments: [execution.id]),
            let payer = try payer(ofJob: execution.jobID, db),
            try Int64.fetchOne(db, sql: "SELECT 1 FROM ledger WHERE kind = 'Refund' AND executionID = ?", arguments: [execution.id]) == nil
        else { return }
        let node = AccountID.node(execution.nodeID)
        let amount = min(paid, try balance(of: node.description, db) ?? 0)
        guard amount > 0 else { return }
        try post(
            LedgerEntry(
                kind: .refund, from: node, to: payer, amount: amount, jobID: execution.jobID, executionID: execution.id,
                receipt: execution.receipt, memo: "its result was found wrong after it was paid", time: now), db)
    }

    /// Settles a job about to be pruned: whatever it still holds goes back to its payer.
    static func releaseForPruning(jobID: String, now: Int64, _ db: Database) throws {
        try settle(jobID: jobID, now: now, db)
        guard let payer = try payer(ofJob: jobID, db) else { return }
        try release(jobID: jobID, to: payer, "the job was pruned", now: now, db)
    }

    // MARK: Accounts

    /// Adds credits to an account from outside (an admin's deposit), or pays a node's earnings
    /// out (`payout`). Returns the account after.
    public func transfer(_ kind: LedgerEntry.Kind, account: AccountID, amount: Int64, memo: String, now: Int64) async throws -> Account {
        guard amount > 0, amount <= Budget.limit else {
            throw CodError(.badRequest, "the amount must be from 1 to \(Budget.limit) micro-credits, got \(amount)")
        }
        do {
            return try await writer.write { db in
                switch kind {
                case .deposit:
                    guard case .user = account else {
                        throw CodError(.badRequest, "deposits go to user accounts (user:NAME), not \(account)")
                    }
                    try Self.post(LedgerEntry(kind: .deposit, from: .external, to: account, amount: amount, memo: memo, time: now), db)
                case .payout:
                    guard case .node = account else {
                        throw CodError(.badRequest, "payouts are of a node's earnings (node:ID), not \(account)")
                    }
                    try Self.post(LedgerEntry(kind: .payout, from: account, to: .external, amount: amount, memo: memo, time: now), db)
                default:
                    throw CodError(.badRequest, "only deposits and payouts are made by hand, not \(kind.rawValue)")
                }
                return try Self.account(account.description, db)
            }
        } catch let short as InsufficientFunds {
            throw CodError(
                .paymentRequired, "account \(short.account) has \(short.balance) micro-credits, less than the \(short.needed) asked",
                hint: "see its balance with cod account balance \(short.account)")
        }
    }

    static func account(_ id: String, _ db: Database) throws -> Account {
        let own = try balance(of: id, db) ?? 0
        // A user's running jobs' holds: the hold accounts its Hold entries filled.
        let held = try Int64.fetchOne(
            db, sql: """
                SELECT COALESCE(SUM(a.balance), 0) FROM ledger l JOIN accounts a ON a.id = l.target
                WHERE l.kind = 'Hold' AND l.source = ?
                """, arguments: [id]) ?? 0
        return Account(id: id, balance: own, held: held)
    }

    /// One account (an unknown one has nothing).
    public func account(_ id: AccountID) async throws -> Account {
        try await writer.read { db in try Self.account(id.description, db) }
    }

    /// Every account the ledger touched, by ID; job holds only while they hold something.
    public func accounts() async throws -> [Account] {
        try await writer.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM accounts WHERE id NOT LIKE 'hold:%' OR balance > 0 ORDER BY id")
                .map { try Self.account($0, db) }
        }
    }

    /// Ledger entries in order after `after`, of one job, or touching one account.
    public func ledger(jobID: String? = nil, account: String? = nil, after: Int64 = 0, limit: Int = 1000) async throws -> [LedgerEntry] {
        try await writer.read { db in
            var conditions = ["seq > ?"]
            var arguments: StatementArguments = [after]
            if let jobID {
                conditions.append("jobID = ?")
                arguments += [jobID]
            }
            if let account {
                conditions.append("(source = ? OR target = ?)")
                arguments += [account, account]
            }
            arguments += [limit]
            return try Row.fetchAll(
                db, sql: "SELECT * FROM ledger WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq LIMIT ?", arguments: arguments
            ).map { row in
                var entry = LedgerEntry(
                    kind: LedgerEntry.Kind(rawValue: row["kind"]) ?? .charge, from: .external, to: .external, amount: row["amount"],
                    jobID: row["jobID"], executionID: row["executionID"], receipt: row["receipt"], memo: row["memo"], time: row["time"])
                entry.seq = row["seq"]
                entry.period = row["period"]
                entry.from = row["source"]
                entry.to = row["target"]
                return entry
            }
        }
    }
}
