import Crypto
public import Foundation
public import Models

/// What a task runs, for reputation: the engine and its artifact (a WASM module, an image, a
/// host program). An artifact longer than a CID or an image name (a module sent inline) is
/// named by its SHA-256.
public enum ArtifactIdentity {
    public static func of(_ task: JobTask) -> (engine: String, artifact: String) {
        let engine = task.engine.normalizedType
        let key = ["docker": "Image", "wasm": "EntryModule", "process": "Command"][engine] ?? ""
        let text = task.engine.params[key]?.stringValue ?? ""
        guard text.utf8.count > 200 else { return (engine, text) }
        return (engine, "sha256:" + SHA256.hash(data: Data(text.utf8)).hexString)
    }
}
