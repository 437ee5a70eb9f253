import Foundation
import GRDB
import Models
public import Wire

extension AppDatabase {
    /// Stores a new join token under the SHA-256 (`hash`) of its secret.
    public func createJoinToken(_ token: JoinTokenInfo, hash: String) async throws {
        try await writer.write { db in try Self.insert(token, hash: hash, db) }
    }

    static func insert(_ token: JoinTokenInfo, hash: String, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO joinTokens (id, hash, data) VALUES (?, ?, ?)", arguments: [token.id, hash, try encode(token)])
    }

    static func update(_ token: JoinTokenInfo, _ db: Database) throws {
        try db.execute(sql: "UPDATE joinTokens SET data = ? WHERE id = ?", arguments: [try encode(token), token.id])
    }

    /// Makes sure the token the orchestrator was started with is listed (as `startup`), and
    /// revokes an earlier startup token it replaces. Revoking the startup token sticks: the
    /// same secret at the next start stays revoked. Synchronous: it runs while the server starts.
    public func ensureStartupJoinToken(hash: String, id: String, now: Int64) throws {
        try writer.write { db in
            for row in try Row.fetchAll(db, sql: "SELECT hash, data FROM joinTokens") {
                var token = try Self.decode(JoinTokenInfo.self, row["data"])
                guard token.isStartupToken, (row["hash"] as String) != hash, token.revokeTime == 0 else { continue }
                token.revokeTime = now
                token.revokeReason = "replaced by the token the orchestrator was started with"
                try Self.update(token, db)
            }
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM joinTokens WHERE hash = ?", arguments: [hash]) == nil else { return }
            try Self.insert(
                JoinTokenInfo(id: id, name: "startup", createdBy: JoinTokenInfo.startupCreator, createTime: now, expireTime: 0), hash: hash, db)
        }
    }

    /// The token whose secret hashes to `hash`.
    public func joinToken(hash: String) async throws -> JoinTokenInfo? {
        try await writer.read { db in
            try Data.fetchOne(db, sql: "SELECT data FROM joinTokens WHERE hash = ?", arguments: [hash]).map { try Self.decode(JoinTokenInfo.self, $0) }
        }
    }

    /// Every join token, oldest first.
    public func joinTokens() async throws -> [JoinTokenInfo] {
        try await writer.read { db in
            try Data.fetchAll(db, sql: "SELECT data FROM joinTokens").map { try Self.decode(JoinTokenInfo.self, $0) }
                .sorted { ($0.createTime, $0.id) < ($1.createTime, $1.id) }
        }
    }

    /// Revokes a token by ID or unique prefix; returns it as revoked, or nil when none matches.
    /// Revoking twice keeps the first time and reason.
    public func revokeJoinToken(id: String, reason: String, now: Int64) async throws -> JoinTokenInfo? {
        try await writer.write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT id, data FROM joinTokens WHERE id = ? OR id LIKE ? ESCAPE '\\' LIMIT 2",
                                        arguments: [id, Self.likePrefix(id)])
            let exact = rows.first { ($0["id"] as String) == id }
            guard let row = exact ?? (rows.count == 1 ? rows[0] : nil) else {
                if rows.count > 1 { throw CodError(.ambiguous, "join token prefix \(id) matches more than one token", hint: "give more of the ID") }
                return nil
            }
            var token = try Self.decode(JoinTokenInfo.self, row["data"])
            guard token.revokeTime == 0 else { return token }
            token.revokeTime = now
            token.revokeReason = reason
            try Self.update(token, db)
            return token
        }
    }

    /// Counts an enrollment made with a token.
    public func recordJoinTokenUse(id: String, now: Int64) async throws {
        try await writer.write { db in
            guard let data = try Data.fetchOne(db, sql: "SELECT data FROM joinTokens WHERE id = ?", arguments: [id]) else { return }
            var token = try Self.decode(JoinTokenInfo.self, data)
            token.enrollments += 1
            token.lastUsedTime = now
            try Self.update(token, db)
        }
    }

    /// A LIKE pattern matching IDs that start with `text`, taken literally.
    static func likePrefix(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_") + "%"
    }
}
