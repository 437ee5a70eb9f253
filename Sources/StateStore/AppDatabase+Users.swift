import Foundation
import GRDB
public import Models

/// A user as stored: what identifies and limits it, with its credentials only as hashes.
public struct StoredUser: Codable, Sendable, Hashable {
    public var info: UserInfo
    /// SHA-256 of the API key, hex; empty for a password user.
    public var keyHash: String
    /// The password's scrypt hash (`scrypt$N$r$p$salt$hash`); empty for a key user.
    public var passwordHash: String

    public init(info: UserInfo, keyHash: String, passwordHash: String) {
        self.info = info
        self.keyHash = keyHash
        self.passwordHash = passwordHash
    }
}

extension AppDatabase {
    /// Adds a user; a bad request when the name is taken.
    public func createUser(_ user: StoredUser) async throws {
        try await writer.write { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM users WHERE name = ?", arguments: [user.info.name]) == nil else {
                throw CodError(.conflict, "user \(user.info.name) exists", hint: "remove it first (cod auth user remove \(user.info.name)) or pick another name")
            }
            try Self.insert(user, db)
        }
    }

    static func insert(_ user: StoredUser, _ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO users (name, keyHash, data) VALUES (?, ?, ?)",
            arguments: [user.info.name, user.keyHash.isEmpty ? nil : user.keyHash, try encode(user)])
    }

    /// Adds the user `make` returns when the store has no user yet (the first administrator),
    /// in one transaction; returns whether it did. Synchronous: it runs while the server starts.
    public func createFirstUser(_ make: () throws -> StoredUser) throws -> Bool {
        try writer.write { db in
            guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users") == 0 else { return false }
            try Self.insert(try make(), db)
            return true
        }
    }

    /// The user whose API key hashes to `keyHash`.
    public func user(keyHash: String) async throws -> StoredUser? {
        try await writer.read { db in
            try Data.fetchOne(db, sql: "SELECT data FROM users WHERE keyHash = ?", arguments: [keyHash])
                .map { try Self.decode(StoredUser.self, $0) }
        }
    }

    public func user(named name: String) async throws -> StoredUser? {
        try await writer.read { db in
            try Data.fetchOne(db, sql: "SELECT data FROM users WHERE name = ?", arguments: [name])
                .map { try Self.decode(StoredUser.self, $0) }
        }
    }

    /// Every user, by name.
    public func users() async throws -> [StoredUser] {
        try await writer.read { db in
            try Data.fetchAll(db, sql: "SELECT data FROM users ORDER BY name").map { try Self.decode(StoredUser.self, $0) }
        }
    }

    /// Removes a user; returns whether there was one.
    public func deleteUser(named name: String) async throws -> Bool {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM users WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }
}
