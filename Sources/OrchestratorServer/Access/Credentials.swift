import Crypto
import _CryptoExtras
import Foundation
import Models
import StateStore
import Wire

/// API keys and passwords as the orchestrator keeps them: keys are 256 random bits, stored
/// only as their SHA-256; passwords are stored as scrypt hashes.
enum Credentials {
    /// A new API key: `cod_` and 43 characters of base64url (256 bits).
    static func newAPIKey() -> String {
        "cod_" + Base64URL.encode(randomBytes(32))
    }

    /// `count` bytes from the system's secure generator.
    static func randomBytes(_ count: Int) -> [UInt8] { KeyMaterial.randomBytes(count) }

    /// What the store keeps of an API key.
    static func keyHash(_ key: String) -> String { KeyMaterial.hash(key) }

    /// The part of a key that may be shown, to tell keys apart.
    static func keyPrefix(_ key: String) -> String { String(key.prefix(12)) }

    /// scrypt parameters: N = 2^15, r = 8, p = 1 (32 MiB, tens of milliseconds), as OWASP
    /// recommends for interactive logins.
    static let scryptRounds = 1 << 15

    /// `scrypt$N$r$p$salt$hash` (salt and hash in base64url).
    static func hashPassword(_ password: String) throws -> String {
        let salt = randomBytes(16)
        let hash = try scrypt(password, salt: salt, rounds: scryptRounds, blockSize: 8, parallelism: 1)
        return "scrypt$\(scryptRounds)$8$1$\(Base64URL.encode(salt))$\(Base64URL.encode(hash))"
    }

    /// Whether `password` matches a hash made by ``hashPassword(_:)``; false for anything
    /// malformed. Parameters are bounded so a crafted record cannot make a check take forever.
    static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$").map(String.init)
        guard parts.count == 6, parts[0] == "scrypt", let rounds = Int(parts[1]), let blockSize = Int(parts[2]),
              let parallelism = Int(parts[3]), (2...(1 << 20)).contains(rounds), rounds & (rounds - 1) == 0,
              (1...32).contains(blockSize), (1...16).contains(parallelism),
              let salt = Base64URL.decode(parts[4]).map(Array.init), let expected = Base64URL.decode(parts[5]), !expected.isEmpty,
              let actual = try? scrypt(password, salt: salt, rounds: rounds, blockSize: blockSize, parallelism: parallelism, length: expected.count)
        else { return false }
        return Secrets.equal(Base64URL.encode(actual), Base64URL.encode(expected))
    }

    private static func scrypt(
        _ password: String, salt: [UInt8], rounds: Int, blockSize: Int, parallelism: Int, length: Int = 32
    ) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8), salt: salt, outputByteCount: length, rounds: rounds, blockSize: blockSize,
            parallelism: parallelism)
        return key.withUnsafeBytes { Array($0) }
    }
}
