@testable import CodTestKit
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Foundation
import Models
import Testing
import Wire

/// Who may do what, through the real API of a devstack and the real CLI: every route without
/// credentials, with a read-only key, with a key for another namespace, and as the owner.
@Suite("Access control", .serialized)
struct AccessControlTests {
    /// Every route the orchestrator serves, with a body where one is needed (the values need
    /// not be valid: authorization is decided before any handler reads them).
    static let writes: [(String, String)] = [
        ("PUT", "/api/v1/orchestrator/jobs"), ("POST", "/api/v1/orchestrator/jobs"),
        ("DELETE", "/api/v1/orchestrator/jobs/j-x"), ("PUT", "/api/v1/orchestrator/jobs/j-x/rerun"),
        ("PUT", "/api/v1/orchestrator/nodes/n-x"), ("POST", "/api/v1/orchestrator/nodes"),
        ("POST", "/api/v1/orchestrator/gc"),
        ("POST", "/api/v1/orchestrator/datasets/placement"), ("PUT", "/api/v1/orchestrator/datasets"),
        ("DELETE", "/api/v1/orchestrator/datasets/bafyx"),
        ("PUT", "/api/v1/data/car"), ("PUT", "/api/v1/data/pin/bafyx"), ("DELETE", "/api/v1/data/pin/bafyx"),
        ("POST", "/api/v1/data/gc"),
        ("POST", "/api/v1/auth/users"), ("DELETE", "/api/v1/auth/users/someone"),
        ("POST", "/api/v1/orchestrator/accounts/user:x/deposit"), ("POST", "/api/v1/orchestrator/accounts/node:x/payout"),
    ]
    static let reads: [(String, String)] = [
        ("GET", "/api/v1/agent/node"),
        ("GET", "/api/v1/orchestrator/jobs"), ("GET", "/api/v1/orchestrator/jobs/j-x"), ("GET", "/api/v1/orchestrator/jobs/j-x/wait"),
        ("GET", "/api/v1/orchestrator/jobs/j-x/executions"), ("GET", "/api/v1/orchestrator/jobs/j-x/history"),
        ("GET", "/api/v1/orchestrator/jobs/j-x/logs"), ("GET", "/api/v1/orchestrator/jobs/j-x/results"),
        ("GET", "/api/v1/orchestrator/results/e-x"),
        ("GET", "/api/v1/orchestrator/nodes"), ("GET", "/api/v1/orchestrator/nodes/n-x"),
        ("GET", "/api/v1/orchestrator/datasets"), ("GET", "/api/v1/orchestrator/datasets/bafyx"),
        ("GET", "/api/v1/data/stat"), ("GET", "/api/v1/data/ls/bafyx"),
        ("GET", "/api/v1/auth/whoami"), ("GET", "/api/v1/auth/users"),
        ("GET", "/api/v1/orchestrator/accounts"), ("GET", "/api/v1/orchestrator/ledger"),
        ("GET", "/api/v1/orchestrator/no-such-route"),
    ]
    static let open: [(String, String)] = [
        ("GET", "/api/v1/agent/alive"), ("GET", "/api/v1/agent/version"), ("GET", "/api/v1/agent/authconfig"),
        ("GET", "/ipfs/bafkqaaa"), ("HEAD", "/ipfs/bafkqaaa"),
    ]

    /// Adds a user through the CLI as the admin; returns its key.
    static func addUser(_ stack: DevstackProcess, _ name: String, _ capabilities: String...) async throws -> String {
        let result = try await stack.cod(["auth", "user", "add", name] + capabilities.flatMap { ["--capability", $0] } + ["--output", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let response = try JSONDecoder().decode(CreateUserResponse.self, from: Data(result.stdout.utf8))
        return try #require(response.apiKey)
    }

    static func code(_ body: String) -> String? {
        (try? JSONDecoder().decode(ErrorResponse.self, from: Data(body.utf8)))?.code
    }

    @Test func everyRouteNeedsCredentialsExceptTheOpenOnes() async throws {
        let stack = try await SecurityStack.shared.get()
        for (method, path) in Self.writes + Self.reads {
            let (status, body) = try await api(stack, method, path, body: method == "GET" ? nil : Data("{}".utf8), key: .some(nil))
            #expect(status == 401, "\(method) \(path) without credentials: \(status) \(body)")
            #expect(Self.code(body) == "Unauthorized", "\(method) \(path): \(body)")
        }
        for (method, path) in Self.open {
            let (status, body) = try await api(stack, method, path, key: .some(nil))
            #expect(status != 401 && status != 403, "\(method) \(path) is open: \(status) \(body)")
        }
        // A key nobody holds, and a malformed header, are refused the same way.
        for header in ["cod_not-a-real-key", ""] {
            let (status, _) = try await api(stack, "GET", "/api/v1/orchestrator/jobs", key: .some(header))
            #expect(status == 401)
        }
        let (status, _) = try await api(stack, "GET", "/api/v1/orchestrator/jobs", key: .some("x"))
        #expect(status == 401)
    }

    @Test func aReadOnlyKeyReadsButNeverWrites() async throws {
        let stack = try await SecurityStack.shared.get()
        let reader = try await Self.addUser(stack, "reader-\(UUID().uuidString.prefix(6))", "read:job,read:node,read:agent,read:data")
        for (method, path) in Self.writes {
            let (status, body) = try await api(stack, method, path, body: Data("{}".utf8), key: .some(reader))
            #expect(status == 403, "\(method) \(path) with a read-only key: \(status) \(body)")
            #expect(Self.code(body) == "Forbidden", "\(body)")
        }
        for (method, path) in Self.reads where !path.hasPrefix("/api/v1/auth/users") {
            let (status, body) = try await api(stack, method, path, key: .some(reader))
            #expect(status != 401 && status != 403, "\(method) \(path) with a read key: \(status) \(body)")
        }
        // Listing users is the admin's.
        #expect(try await api(stack, "GET", "/api/v1/auth/users", key: .some(reader)).0 == 403)
    }

    /// A user sees its own account and the entries that touch it; another's account, a deposit
    /// and a payout are refused and move nothing. The admin's deposit is in the user's balance.
    @Test func accountsAreTheirOwnersAndOnlyAdminsMoveCredits() async throws {
        let stack = try await SecurityStack.shared.get()
        let suffix = UUID().uuidString.prefix(6).lowercased()
        let erin = try await Self.addUser(stack, "erin-\(suffix)", "read:job,write:job")
        let deposit = try await stack.cod("account", "deposit", "user:erin-\(suffix)", "2500", "-m", "welcome", "--output", "json")
        #expect(deposit.status == 0, "\(deposit.stderr)")
        for (method, path) in [
            ("POST", "/api/v1/orchestrator/accounts/user:erin-\(suffix)/deposit"), ("GET", "/api/v1/orchestrator/accounts/user:admin"),
            ("POST", "/api/v1/orchestrator/accounts/node:n-x/payout"), ("GET", "/api/v1/orchestrator/accounts/node:n-x"),
        ] {
            let (status, body) = try await api(stack, method, path, body: method == "GET" ? nil : Data(#"{"Amount": 1000000}"#.utf8), key: .some(erin))
            #expect(status == 403, "\(method) \(path) as a user: \(status) \(body)")
        }
        let (status, body) = try await api(stack, "GET", "/api/v1/orchestrator/accounts/user:erin-\(suffix)", key: .some(erin))
        #expect(status == 200 && (try? JSONDecoder().decode(Account.self, from: Data(body.utf8)))?.balance == 2500, "\(body)")
        // Asking for the whole ledger gives only the entries that touch the caller's account.
        let ledger = try await api(stack, "GET", "/api/v1/orchestrator/ledger?account=external", key: .some(erin))
        #expect(ledger.0 == 403, "\(ledger.1)")
        let own = try await api(stack, "GET", "/api/v1/orchestrator/ledger", key: .some(erin))
        let entries = try JSONDecoder().decode(ListResponse<LedgerEntry>.self, from: Data(own.1.utf8)).items
        #expect(entries.count == 1 && entries[0].kind == .deposit && entries[0].to == "user:erin-\(suffix)" && entries[0].memo == "welcome", "\(entries)")
        // Nonsense amounts and accounts are refused with what is wrong, and change nothing.
        for (account, amount) in [("user:erin-\(suffix)", "0"), ("node:n-x", "5"), ("bogus", "5")] {
            let refused = try await stack.cod("account", "deposit", account, amount)
            #expect(refused.status != 0 && !refused.stderr.isEmpty, "\(account) \(amount): \(refused.stdout)")
        }
        let balance = try await stack.cod("account", "balance", "user:erin-\(suffix)", "--output", "json")
        #expect((try? JSONDecoder().decode(Account.self, from: Data(balance.stdout.utf8)))?.balance == 2500, "\(balance.stdout)\(balance.stderr)")
    }

    /// A job of another namespace is neither readable nor stoppable with a key limited to one
    /// namespace, and its listing shows only that namespace; the job itself is untouched.
    @Test func aKeyForAnotherNamespaceIsRefusedAndChangesNothing() async throws {
        let stack = try await SecurityStack.shared.get()
        let suffix = UUID().uuidString.prefix(6).lowercased()
        let alice = try await Self.addUser(stack, "alice-\(suffix)", "read:job,write:job@team-\(suffix)")
        // The admin's job, in the default namespace, running for a while.
        let run = try await stack.cod("wasm", "run", try Paths.fixture("sleepy"), "-e", "SECONDS=30", "--wait=false", "--id-only")
        let adminJob = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(adminJob.hasPrefix("j-"), "\(run.stderr)")
        for (method, path) in [("GET", "/api/v1/orchestrator/jobs/\(adminJob)"), ("GET", "/api/v1/orchestrator/jobs/\(adminJob)/logs"),
                               ("DELETE", "/api/v1/orchestrator/jobs/\(adminJob)"), ("PUT", "/api/v1/orchestrator/jobs/\(adminJob)/rerun")] {
            let (status, body) = try await api(stack, method, path, key: .some(alice))
            #expect(status == 403, "\(method) \(path) from another namespace: \(status) \(body)")
        }
        let still = try await describe(stack, adminJob)
        #expect(still.job.version == 1 && !still.job.state.stateType.isTerminal, "\(still.job.state)")
        // Submitting into a namespace the key does not cover is refused; into its own works.
        let spec = Self.spec(namespace: "default", env: [:])
        #expect(try await api(stack, "PUT", "/api/v1/orchestrator/jobs", body: spec, key: .some(alice)).0 == 403)
        let (status, body) = try await api(stack, "PUT", "/api/v1/orchestrator/jobs", body: Self.spec(namespace: "team-\(suffix)", env: [:]), key: .some(alice))
        #expect(status == 200, "\(body)")
        let listed = try await api(stack, "GET", "/api/v1/orchestrator/jobs?limit=1000", key: .some(alice))
        let page = try JSONDecoder().decode(ListResponse<Job>.self, from: Data(listed.1.utf8))
        #expect(!page.items.isEmpty && page.items.allSatisfy { $0.namespace == "team-\(suffix)" }, "\(page.items.map(\.namespace))")
        #expect(try await api(stack, "GET", "/api/v1/orchestrator/jobs?namespace=default", key: .some(alice)).0 == 403)
        _ = try await stack.cod("job", "stop", adminJob)
    }

    /// A job's `Env` values and inline inputs reach its owner and admins only: no response to
    /// another reader of the namespace carries them, whichever route it asks.
    @Test func anotherUsersEnvNeverAppearsInAnyResponse() async throws {
        let stack = try await SecurityStack.shared.get()
        let suffix = UUID().uuidString.prefix(6).lowercased()
        let owner = try await Self.addUser(stack, "owner-\(suffix)", "read:job,write:job")
        let other = try await Self.addUser(stack, "other-\(suffix)", "read:job,write:job")
        let secret = "s3cret-\(UUID().uuidString)"
        let (status, body) = try await api(
            stack, "PUT", "/api/v1/orchestrator/jobs", body: Self.spec(namespace: "default", env: ["SECONDS": "0", "TOKEN": secret]),
            key: .some(owner))
        #expect(status == 200, "\(body)")
        let id = try JSONDecoder().decode(PutJobResponse.self, from: Data(body.utf8)).jobID
        _ = try await ended(stack, id)
        let inline = String(Self.moduleBase64.prefix(40))
        let paths = [
            "/api/v1/orchestrator/jobs/\(id)?include=executions,history", "/api/v1/orchestrator/jobs?limit=1000",
            "/api/v1/orchestrator/jobs/\(id)/wait?revision=0&timeout=0", "/api/v1/orchestrator/jobs/\(id)/executions",
            "/api/v1/orchestrator/jobs/\(id)/history", "/api/v1/orchestrator/jobs/\(id)/logs", "/api/v1/orchestrator/jobs/\(id)/results",
        ]
        for path in paths {
            let (status, body) = try await api(stack, "GET", path, key: .some(other))
            #expect(status == 200, "\(path): \(body)")
            #expect(!body.contains(secret) && !body.contains(inline), "\(path) showed another user's secret")
        }
        // The CLI's views, as the other user.
        for arguments in [["job", "describe", id, "--output", "json"], ["job", "list", "--output", "yaml", "--limit", "1000"]] {
            let result = try await Run.async(
                [try Paths.cod.path] + arguments, environment: ["COD_API_PORT": String(stack.port), "COD_API_KEY": other])
            #expect(result.status == 0 && !result.stdout.contains(secret), "\(arguments): \(result.stderr)")
        }
        // Its owner and the admin see it.
        #expect(try await api(stack, "GET", "/api/v1/orchestrator/jobs/\(id)", key: .some(owner)).1.contains(secret))
        #expect(try await api(stack, "GET", "/api/v1/orchestrator/jobs/\(id)").1.contains(secret))
    }

    /// Pins are per user: another user's unpin is refused, and the data outlives a garbage
    /// collection; the owner's own unpin works.
    @Test func unpinByAnotherUserLeavesTheDataPinned() async throws {
        let stack = try await SecurityStack.shared.get()
        let suffix = UUID().uuidString.prefix(6).lowercased()
        let alice = try await Self.addUser(stack, "pinner-\(suffix)", "read:data,write:data")
        let mallory = try await Self.addUser(stack, "mallory-\(suffix)", "read:data,write:data")
        let folder = try Paths.temporaryDirectory("cod-pins")
        let content = "only alice unpins this \(UUID().uuidString)\n"
        try Data(content.utf8).write(to: folder.appendingPathComponent("note.txt"))
        let add = try await Run.async(
            [try Paths.cod.path, "data", "add", folder.path, "--pin", "--quiet"], environment: ["COD_API_PORT": String(stack.port), "COD_API_KEY": alice])
        let cid = add.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(add.status == 0 && !cid.isEmpty, "\(add.stderr)")
        for holder in ["", "?holder=user", "?holder=user:pinner-\(suffix)", "?holder=result:e-1"] {
            let (status, body) = try await api(stack, "DELETE", "/api/v1/data/pin/\(cid)\(holder)", key: .some(mallory))
            #expect(status == 403, "unpin\(holder) by another user: \(status) \(body)")
        }
        #expect(try await api(stack, "POST", "/api/v1/data/gc").0 == 200)
        let (status, body) = try await api(stack, "GET", "/ipfs/\(cid)/note.txt", key: .some(nil))
        #expect(status == 200 && body == content, "the data was lost: \(status)")
        let unpinned = try await api(stack, "DELETE", "/api/v1/data/pin/\(cid)", key: .some(alice))
        #expect(unpinned.0 == 200, "\(unpinned.1)")
    }

    /// The admin key never reaches the devstack's log at info level.
    @Test func theAdminKeyStaysOutOfTheLog() async throws {
        let stack = try await SecurityStack.shared.get()
        #expect(stack.apiKey.hasPrefix("cod_"))
        #expect(!stack.logText.contains(stack.apiKey))
        let file = stack.dataDirectory.appendingPathComponent("orchestrator/admin.key")
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    static let moduleBase64: String = {
        (try? Data(contentsOf: URL(fileURLWithPath: Paths.fixture("sleepy"))).base64EncodedString()) ?? ""
    }()

    /// A one-task WASM job spec running the sleepy fixture, inline.
    static func spec(namespace: String, env: [String: String]) -> Data {
        let envJSON = String(decoding: (try? JSONEncoder().encode(env)) ?? Data("{}".utf8), as: UTF8.self)
        return Data("""
            {"Job": {"Type": "batch", "Namespace": "\(namespace)", "Tasks": [{"Name": "main",
              "Engine": {"Type": "wasm", "Params": {"EntryModule": "/app/m.wasm"}}, "Env": \(envJSON),
              "InputSources": [{"Target": "/app/m.wasm", "Source": {"Type": "inline",
                "Params": {"URL": "data:application/wasm;base64,\(moduleBase64)"}}}]}]}}
            """.utf8)
    }
}

/// The same rules against separate `cod serve` processes, through the CLI a user runs.
@Suite("Access control (separate processes)", .serialized)
struct ServeAccessControlTests {
    @Test func adminKeyFileLoginAndAPrivateGateway() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator(["--private-gateway"])
        defer { if orchestrator.isRunning { orchestrator.interrupt() } }
        let admin = try await ChildProcesses(executable: cluster.cod, logs: cluster.base).adminKey(data: cluster.base.appendingPathComponent("o"))
        let keyFile = cluster.base.appendingPathComponent("o/orchestrator/admin.key")
        #expect(try FileManager.default.attributesOfItem(atPath: keyFile.path)[.posixPermissions] as? Int == 0o600)
        let log = try String(contentsOf: cluster.base.appendingPathComponent("orchestrator.log"), encoding: .utf8)
        #expect(log.contains(keyFile.path) && !log.contains(admin), "the log must say where the key is, never the key")

        // Without a key the CLI is told what to do; the admin adds a user.
        let base = ["COD_API_PORT": String(cluster.port), "COD_API_HOST": "127.0.0.1"]
        let anonymous = try await Run.async([cluster.cod.path, "job", "list"], environment: base)
        #expect(anonymous.status != 0 && anonymous.stderr.contains("needs credentials") && anonymous.stderr.contains("cod auth login"), "\(anonymous.stderr)")
        let add = try await Run.async(
            [cluster.cod.path, "auth", "user", "add", "dana", "--capability", "read:job,write:job", "--output", "json"],
            environment: base.merging(["COD_API_KEY": admin]) { $1 })
        let key = try #require(try JSONDecoder().decode(CreateUserResponse.self, from: Data(add.stdout.utf8)).apiKey, "\(add.stderr)")

        // Bacalhau's variable works, and so does a saved login (read from standard input).
        let viaBacalhau = try await Run.async([cluster.cod.path, "auth", "whoami"], environment: base.merging(["BACALHAU_API_KEY": key]) { $1 })
        #expect(viaBacalhau.stdout.contains("dana"), "\(viaBacalhau.stderr)")
        let config = try Paths.temporaryDirectory("cod-login")
        let loginEnvironment = base.merging(["COD_CONFIG_DIR": config.path]) { $1 }
        let login = try await Run.async(["/bin/sh", "-c", "echo \(key) | \(cluster.cod.path) auth login"], environment: loginEnvironment)
        #expect(login.status == 0, "\(login.stderr)")
        let saved = try FileManager.default.contentsOfDirectory(at: config.appendingPathComponent("credentials"), includingPropertiesForKeys: nil)
        #expect(saved.count == 1)
        #expect(try FileManager.default.attributesOfItem(atPath: saved[0].path)[.posixPermissions] as? Int == 0o600)
        #expect(try await Run.async([cluster.cod.path, "job", "list"], environment: loginEnvironment).status == 0)
        // dana may not manage users, nor read the gateway of this orchestrator (it is private).
        let refused = try await Run.async([cluster.cod.path, "auth", "user", "list"], environment: loginEnvironment)
        #expect(refused.status != 0 && refused.stderr.contains("needs admin"), "\(refused.stderr)")
        _ = try await Run.async([cluster.cod.path, "auth", "logout"], environment: loginEnvironment)
        #expect(try await Run.async([cluster.cod.path, "job", "list"], environment: loginEnvironment).status != 0)

        let url = URL(string: "http://127.0.0.1:\(cluster.port)/ipfs/bafkqaaa")!
        let (_, closed) = try await URLSession.shared.data(from: url)
        #expect((closed as? HTTPURLResponse)?.statusCode == 401)
        var request = URLRequest(url: url)
        request.setValue("Bearer \(admin)", forHTTPHeaderField: "Authorization")
        let (_, open) = try await URLSession.shared.data(for: request)
        #expect((open as? HTTPURLResponse)?.statusCode == 200)
    }
}
