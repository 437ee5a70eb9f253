import APIClient
public import ArgumentParser
import Foundation
import Models
import Yams

/// How results are printed.
public enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case table, json, yaml
}

/// Where the API is: every client command takes these.
public struct APIOptions: ParsableArguments {
    @Option(name: .customLong("api-host"), help: "Host of the Cod API (env COD_API_HOST; default 127.0.0.1).")
    var apiHost: String?

    @Option(name: .customLong("api-port"), help: "Port of the Cod API (env COD_API_PORT; default 1234).")
    var apiPort: Int?

    @Flag(name: .customLong("tls"), help: "Speak HTTPS to the API, trusting the system's roots (env COD_TLS=1).")
    var useTLS = false

    @OptionGroup var trust: TrustOptions

    public init() {}

    /// Which certificates the HTTPS API may show; nil for plain HTTP.
    func tlsPolicy() throws -> ClientTLS? {
        try trust.policy() ?? (usesTLS ? .systemRoots : nil)
    }

    /// `--tls`, `COD_TLS=1`, or a certificate to trust (which implies https).
    var usesTLS: Bool {
        let flag = ProcessInfo.processInfo.environment["COD_TLS"].map { ["1", "true", "yes"].contains($0.lowercased()) } ?? false
        return useTLS || flag || (try? trust.policy()) != nil
    }

    var host: String {
        apiHost ?? ProcessInfo.processInfo.environment["COD_API_HOST"]
            ?? ProcessInfo.processInfo.environment["BACALHAU_API_HOST"] ?? "127.0.0.1"
    }

    var port: Int {
        apiPort ?? ProcessInfo.processInfo.environment["COD_API_PORT"].flatMap(Int.init)
            ?? ProcessInfo.processInfo.environment["BACALHAU_API_PORT"].flatMap(Int.init) ?? 1234
    }

    /// The API's address as clients and the credential store name it.
    var baseURL: String { "\(usesTLS ? "https" : "http")://\(host):\(port)" }

    /// The credential to send: `COD_API_KEY`, else `BACALHAU_API_KEY`, else what `cod auth
    /// login` saved for this address.
    var credential: ClientCredential? {
        let environment = ProcessInfo.processInfo.environment
        for name in ["COD_API_KEY", "BACALHAU_API_KEY"] {
            if let key = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !key.isEmpty { return .apiKey(key) }
        }
        return CredentialStore.standard.credential(for: baseURL)
    }

    func client() -> CodClient {
        // validate() has checked the TLS options.
        CodClient(baseURL: baseURL, credential: credential, tls: try? tlsPolicy())
    }
}

/// Which certificate an https:// server may show: the CLI's API, or a compute node's
/// orchestrator (`cod serve --compute`).
public struct TrustOptions: ParsableArguments {
    @Option(name: .customLong("tls-ca"), help: "Trust the PEM certificate(s) in this file for the https:// API or orchestrator: the server's own or its authority (env COD_TLS_CA; implies --tls).")
    var authority: String?

    @Option(name: .customLong("tls-fingerprint"), help: "Trust only the self-signed certificate with this SHA-256 fingerprint, as cod serve --tls-self-signed logged it (env COD_TLS_FINGERPRINT; implies --tls).")
    var fingerprint: String?

    public init() {}

    public func validate() throws {
        do {
            _ = try policy()
        } catch let error as CodError {
            throw ValidationError(error.message + (error.hint.map { "; \($0)" } ?? ""))
        }
    }

    /// The pinned certificate or the authority asked for, here or in the environment; nil for
    /// neither.
    func policy() throws -> ClientTLS? {
        let environment = ProcessInfo.processInfo.environment
        return try ClientTLS.from(
            authorityFile: authority ?? environment["COD_TLS_CA"], fingerprint: fingerprint ?? environment["COD_TLS_FINGERPRINT"])
    }
}

/// The API options plus how to print, for commands that show records. (Commands that run
/// jobs use `-o/--output` for result folders, as Bacalhau's do, so they take `APIOptions`.)
public struct GlobalOptions: ParsableArguments {
    @OptionGroup var api: APIOptions

    @Option(name: .long, help: "Output format: table, json or yaml.")
    var output: OutputFormat = .table

    public init() {}

    var host: String { api.host }
    var port: Int { api.port }
    func client() -> CodClient { api.client() }

    /// Prints `value` as JSON or YAML, or calls `table` for the table format.
    func print<T: Encodable>(_ value: T, table: () -> Void) throws {
        switch output {
        case .table: table()
        case .json: Swift.print(try Output.json(value))
        case .yaml: Swift.print(try YAMLEncoder().encode(value), terminator: "")
        }
    }
}

enum Output {
    /// Micro-credits as credits: `0.001234 credits`.
    static func credits(_ micro: Int64) -> String {
        let sign = micro < 0 ? "-" : ""
        let magnitude = micro.magnitude
        let fraction = String(magnitude % 1_000_000)
        return "\(sign)\(magnitude / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count) + fraction) credits"
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Seconds as `job describe` shows usage: milliseconds below 10 s.
    static func seconds(_ value: Double) -> String {
        value < 10 ? String(format: "%.3f s", value) : String(format: "%.1f s", value)
    }

    /// A plain aligned table.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        TextTable.render(header, rows)
    }

    /// A job's history as `job history` and `job describe` show it.
    static func historyTable(_ history: [JobHistory]) -> String {
        table(
            ["TIME", "LEVEL", "EXEC. ID", "TOPIC", "EVENT"],
            history.map {
                [time($0.time), $0.type == .job ? "Job" : "Execution", $0.executionID.isEmpty ? "" : shortID($0.executionID),
                 $0.event.topic, $0.event.message]
            })
    }

    /// An execution's comment: its state message, led by the kind of failure when it failed.
    static func comment(_ execution: Execution) -> String {
        // A verified job's replica says what the quorum made of its result.
        var verdict = execution.verdict.map { "[\($0.rawValue) result] " } ?? ""
        // An audit re-runs another execution's result; an audited result says how it stands.
        if let audited = execution.auditOf { verdict = "[audit of \(shortID(audited))] " + verdict }
        if let check = execution.check { verdict += "[\(check.reason.rawValue): \(check.outcome?.rawValue ?? "checking")] " }
        guard let failure = execution.failure else { return verdict + execution.computeState.message }
        let kind = failure.reason.rawValue + (failure.retryable ? ", retryable" : "")
        return "\(verdict)[\(kind)] \(execution.computeState.message)"
    }

    static func time(_ nanos: Int64) -> String {
        guard nanos > 0 else { return "-" }
        let text = RFC3339.format(nanos: nanos)
        // 2026-11-21T08:44:57.123Z -> 2026-11-21 08:44:57
        return String(text.prefix(19)).replacingOccurrences(of: "T", with: " ")
    }

    /// Writes to standard error.
    static func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

/// Reports a failure with its hint and exits non-zero, without a stack of Swift noise.
struct CLIFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
