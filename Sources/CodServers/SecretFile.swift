import Foundation

/// A secret kept in a file only its owner may read: created with mode 0600 in the same call
/// that creates it (never widened, never chmodded afterwards), written in full and flushed
/// before it is used.
public enum SecretFile {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The secret in `file`, or a new one from `make` written there when the file does not exist.
    public static func readOrCreate(at file: URL, make: () -> String) throws -> String {
        if let secret = try? read(file) { return secret }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let secret = make()
        // A temporary name created exclusively with its final mode, then renamed into place: a
        // crash leaves no half-written secret, and no moment where the file is readable by others.
        let temporary = file.deletingLastPathComponent().appendingPathComponent(".\(file.lastPathComponent).\(UUID().uuidString)")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create \(temporary.path): \(String(cString: strerror(errno)))") }
        let bytes = Array((secret + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary.path, file.path) == 0 else {
            unlink(temporary.path)
            throw Failure(description: "cannot write \(file.path): \(String(cString: strerror(errno)))")
        }
        return secret
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
