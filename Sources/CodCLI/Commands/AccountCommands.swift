import APIClient
import ArgumentParser
import Foundation
import Models
import Wire

/// `cod account balance|list|deposit|payout`: credits in the ledger. Users see their own
/// account; an admin sees all, deposits into users' accounts and pays nodes' earnings out.
struct AccountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account", abstract: "See balances; deposit credits (admin) and pay nodes' earnings out (admin).",
        discussion: """
            Amounts are micro-credits (1 credit = 1,000,000). Accounts are user:NAME (what a user
            spends), node:ID (what a node earned), hold:JOB-ID (what a running job holds) and
            external (the world outside Cod: deposits come from it, payouts go to it).
            """,
        subcommands: [Balance.self, List.self, Deposit.self, Payout.self])

    static func table(_ accounts: [Account]) -> String {
        Output.table(
            ["ACCOUNT", "BALANCE", "HELD BY RUNNING JOBS"],
            accounts.map { [$0.id, Output.credits($0.balance), $0.held > 0 ? Output.credits($0.held) : "-"] })
    }

    struct Balance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one account's balance (your own when left out).")
        @Argument(help: "user:NAME, node:ID or hold:JOB-ID; your own account when left out.") var account: String?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let client = try await global.client()
            let id: String
            if let account { id = account } else { id = "user:\(try await client.whoAmI().name)" }
            let account = try await client.account(id)
            try global.print(account) { print(AccountCommand.table([account])) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accounts (every one for an admin, your own otherwise).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let accounts = try await global.client().accounts()
            try global.print(ListResponse(items: accounts)) { print(AccountCommand.table(accounts)) }
        }
    }

    /// The account, amount and memo of a deposit or payout.
    struct TransferArguments: ParsableArguments {
        @Argument(help: "user:NAME for a deposit, node:ID for a payout.") var account: String
        @Argument(help: "Micro-credits.") var amount: Int64
        @Option(name: .shortAndLong, help: "Why (kept in the ledger).") var message = ""
        @OptionGroup var global: GlobalOptions

        func run(_ kind: LedgerEntry.Kind) async throws {
            let account = try await global.client().transfer(kind, account: account, amount: amount, memo: message)
            try global.print(account) { print(AccountCommand.table([account])) }
        }
    }

    struct Deposit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add credits to a user's account (admin).")
        @OptionGroup var transfer: TransferArguments
        func run() async throws { try await transfer.run(.deposit) }
    }

    struct Payout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pay a node's earnings out to its operator (admin; settled outside Cod).")
        @OptionGroup var transfer: TransferArguments
        func run() async throws { try await transfer.run(.payout) }
    }
}

/// `cod ledger list`: the entries behind the balances, in order.
struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "List ledger entries: deposits, holds, charges, payouts, releases and refunds.",
        subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List entries in order, of one job or touching one account.")
        @Option(help: "Only this job's entries (ID, prefix or name).") var job: String?
        @Option(help: "Only entries from or to this account.") var account: String?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let entries = try await global.client().ledger(job: job, account: account)
            try global.print(ListResponse(items: entries)) {
                guard !entries.isEmpty else {
                    print("No ledger entries\(job.map { " for job \($0)" } ?? "")\(account.map { " for \($0)" } ?? ""). Jobs hold credits only where nodes publish prices.")
                    return
                }
                print(Output.table(
                    ["SEQ", "KIND", "FROM", "TO", "AMOUNT", "JOB", "EXECUTION", "MEMO"],
                    entries.map {
                        [String($0.seq), $0.kind.rawValue, $0.from, $0.to, Output.credits($0.amount), $0.jobID.map(shortID) ?? "-",
                         $0.executionID.map(shortID) ?? "-", $0.memo]
                    }))
            }
        }
    }
}
