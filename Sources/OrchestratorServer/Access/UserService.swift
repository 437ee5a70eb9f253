import Crypto
import Foundation
import Hummingbird
import Models
import SafeFS
import StateStore
import Wire
import Synchronization

/// The orchestrator's users: who they are, what they may do, and checking their credentials.
final class UserService: Sendable {
    let database: AppDatabase
    /// Passwords already checked against their scrypt hash, by user, as a SHA-256 of the pair:
    /// a client sending Basic credentials with every request pays scrypt once, not each time.
    private let verifiedPasswords = Mutex<[String: String]>([:])

    init(database: AppDatabase) {
        self.database = database
    }

    /// Makes the first administrator, `admin`, when the store has no user: its key comes from
    /// (or is written to) `keyFile`, created 0600. Returns whether this start made it.
    func bootstrapAdmin(keyFile: URL) throws -> Bool {
        try database.createFirstUser {
            let key = try SecretFile.readOrCreate(at: keyFile, make: Credentials.newAPIKey)
            let info = UserInfo(
                name: "admin", capabilities: [Capability(actions: [.admin])], keyPrefix: Credentials.keyPrefix(key),
                hasPassword: false, createTime: nowNanos())
            return StoredUser(info: info, keyHash: Credentials.keyHash(key), passwordHash: "")
        }
    }

    /// Adds a user with a new API key (returned once, never stored) or with `password`.
    func create(name: String, capabilities: [Capability], password: String?) async throws -> (UserInfo, key: String?) {
        guard UserInfo.isValidName(name) else {
            throw CodError(.badRequest, "user names are 1 to 64 letters, digits, '-', '_' or '.'; got \"\(name.prefix(70))\"")
        }
        guard !capabilities.isEmpty else {
            throw CodError(.badRequest, "a user needs at least one capability", hint: "for example --capability read:job,write:job@default")
        }
        if let password, password.count < 10 {
            throw CodError(.badRequest, "a password needs at least 10 characters")
        }
        let key = password == nil ? Credentials.newAPIKey() : nil
        let info = UserInfo(
            name: name, capabilities: capabilities, keyPrefix: key.map(Credentials.keyPrefix) ?? "",
            hasPassword: password != nil, createTime: nowNanos())
        let stored = StoredUser(
            info: info, keyHash: key.map(Credentials.keyHash) ?? "", passwordHash: try password.map(Credentials.hashPassword) ?? "")
        try await database.createUser(stored)
        return (info, key)
    }

    func remove(name: String) async throws {
        guard try await database.deleteUser(named: name) else { throw CodError(.notFound, "user \(name) not found") }
        _ = verifiedPasswords.withLock { $0.removeValue(forKey: name) }
    }

    func all() async throws -> [UserInfo] {
        try await database.users().map(\.info)
    }

    /// The principal an `Authorization` header names: nil when the header is absent, an
    /// unauthorized error when it names nobody.
    func authenticate(authorization: String?) async throws -> Principal? {
        guard let authorization, !authorization.isEmpty else { return nil }
        if let key = Self.value(of: authorization, scheme: "Bearer") {
            if key.hasPrefix("cx_") {
                // A running execution's own key: the job owner's rights, on the job's tree only.
                guard let (execution, job) = try await database.executionKey(key) else {
                    throw CodError(
                        .unauthorized, "this execution key is not valid: the execution it was made for has ended, or it never existed",
                        hint: "an execution's key (COD_API_KEY) works only while that execution runs")
                }
                return Principal(
                    name: job.owner, capabilities: [Capability(actions: [.readJob, .writeJob], namespaces: [job.namespace])],
                    scope: ExecutionScope(jobID: job.id, executionID: execution.id))
            }
            guard let user = try await database.user(keyHash: Credentials.keyHash(key)) else {
                throw CodError(.unauthorized, "the API key is not known here", hint: "check COD_API_KEY, or log in with cod auth login")
            }
            return Principal(name: user.info.name, capabilities: user.info.capabilities)
        }
        if let basic = Self.value(of: authorization, scheme: "Basic") {
            guard let decoded = Data(base64Encoded: basic).flatMap({ String(data: $0, encoding: .utf8) }),
                  let colon = decoded.firstIndex(of: ":")
            else { throw CodError(.unauthorized, "Basic credentials must be base64 of USER:PASSWORD") }
            let name = String(decoded[..<colon])
            let password = String(decoded[decoded.index(after: colon)...])
            guard let user = try await database.user(named: name), !user.passwordHash.isEmpty, verify(password, of: user) else {
                throw CodError(.unauthorized, "wrong user name or password")
            }
            return Principal(name: user.info.name, capabilities: user.info.capabilities)
        }
        throw CodError(.unauthorized, "the Authorization header must be Bearer <API key> or Basic <user:password>")
    }

    /// What a running execution's key may call: submit a job (which becomes its child), ask
    /// who it is, and reach its own job or one of its descendants; never a sibling's or any
    /// other job.
    func scoped(_ scope: ExecutionScope, mayCall method: HTTPRequest.Method, path: String) async throws -> Bool {
        if path == "/api/v1/auth/whoami" { return method == .get }
        let jobs = "/api/v1/orchestrator/jobs"
        if path == jobs || path == jobs + "/" { return method == .put || method == .post }
        guard path.hasPrefix(jobs + "/") else { return false }
        let reference = String(path.dropFirst(jobs.count + 1).prefix { $0 != "/" }).removingPercentEncoding ?? ""
        guard let id = try? await database.resolveJobID(reference) else { return false }
        return try await database.isInTree(id, of: scope.jobID)
    }

    private func verify(_ password: String, of user: StoredUser) -> Bool {
        let fingerprint = SHA256.hash(data: Data((user.passwordHash + "\u{0}" + password).utf8)).hexString
        if let known = verifiedPasswords.withLock({ $0[user.info.name] }), Secrets.equal(known, fingerprint) { return true }
        guard Credentials.verify(password, against: user.passwordHash) else { return false }
        verifiedPasswords.withLock { $0[user.info.name] = fingerprint }
        return true
    }

    /// The credential after `scheme ` (case-insensitive scheme), trimmed.
    static func value(of header: String, scheme: String) -> String? {
        guard header.count > scheme.count, header.prefix(scheme.count).lowercased() == scheme.lowercased(),
              header.dropFirst(scheme.count).first == " "
        else { return nil }
        let value = header.dropFirst(scheme.count + 1).trimmingCharacters(in: .whitespaces)
        return value.isEmpty ? nil : value
    }
}
