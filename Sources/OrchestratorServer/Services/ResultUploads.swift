import BlockStore
import Crypto
import Foundation
import Hummingbird
import Models
import StateStore
import Wire

/// Result bundles compute nodes upload before reporting completion: streamed to a temporary
/// file under the size limit, checked against the digest the node sent, then renamed into
/// place and flushed, so the node may drop its copy once this answers.
struct ResultUploads: Sendable {
    let database: AppDatabase
    let directory: URL
    let maxBytes: Int

    /// Stores the bundle of `executionID`, which must be assigned to `nodeID`. Returns its
    /// SHA-256 and size.
    func store(executionID: String, from nodeID: String, expectedSHA256: String?, body: RequestBody) async throws -> (sha256: String, size: Int) {
        guard let execution = try await database.execution(id: executionID), execution.nodeID == nodeID else {
            throw CodError(.notFound, "execution \(executionID) is not assigned to this node")
        }
        let temporary = directory.appendingPathComponent(".upload-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: temporary.path, contents: nil)
        let handle = try FileHandle(forWritingTo: temporary)
        var hasher = SHA256()
        var total = 0
        do {
            for try await buffer in body {
                total += buffer.readableBytes
                guard total <= maxBytes else { throw CodError(.payloadTooLarge, "result bundle exceeds \(maxBytes) bytes") }
                let bytes = Data(buffer: buffer)
                hasher.update(data: bytes)
                try handle.write(contentsOf: bytes)
            }
            try handle.synchronize()
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        let digest = hasher.finalize().hexString
        if let expectedSHA256, expectedSHA256 != digest {
            try? FileManager.default.removeItem(at: temporary)
            throw CodError(.badRequest, "result bundle checksum mismatch (sent \(expectedSHA256), received \(digest))")
        }
        let final = directory.appendingPathComponent(executionID + ".tar.gz")
        _ = try? FileManager.default.removeItem(at: final)
        try FileManager.default.moveItem(at: temporary, to: final)
        // The rename must be on disk too (the file itself was synchronized before it was closed).
        try FileSync.flush(directory.path)
        return (digest, total)
    }
}
