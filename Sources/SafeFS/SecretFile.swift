public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A secret kept in a file only its owner may read: created with mode 0600 in the same call
/// that creates it (never widened, never chmodded afterwards), written in full and flushed
/// before it is used.
public enum SecretFile {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    /// The secret in `file`, or a new one from `make` written there when the file does not exist.
    public static func readOrCreate(at file: URL, make: () -> String) throws -> String {
        if let secret = try? read(file) { return secret }
        let secret = make()
        try write(secret, to: file)
        return secret
    }

    /// Writes `secret` to `file`, replacing what was there. A temporary name is created
    /// exclusively with its final mode, written, flushed and renamed into place: a crash leaves
    /// no half-written secret, and there is no moment where the file is readable by others.
    public static func write(_ secret: String, to file: URL) throws {
        let folder = file.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let temporary = folder.appendingPathComponent(".\(file.lastPathComponent).\(UUID().uuidString)")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create \(temporary.path): \(String(cString: strerror(errno)))") }
        let bytes = Array((secret + "\n").utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary.path, file.path) == 0 else {
            unlink(temporary.path)
            throw Failure(description: "cannot write \(file.path): \(String(cString: strerror(errno)))")
        }
    }

    /// The secret in `file` (trimmed); fails when it is missing or empty.
    public static func read(_ file: URL) throws -> String {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw Failure(description: "cannot read the secret in \(file.path)")
        }
        let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !secret.isEmpty else { throw Failure(description: "\(file.path) is empty") }
        return secret
    }
}
