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

/// Which program a task runs, for estimates from its history: the engine, everything the
/// engine is told (image, module path, command, entrypoint, arguments), the environment, and
/// where a WASM module comes from; not the data it reads. Runs with the same key are the same
/// work on different (or the same) data.
public enum ProgramIdentity {
    struct Key: Encodable {
        var engine: String
        var params: SpecConfig
        var env: [String: String]
        var module: SpecConfig?
    }

    public static func of(_ task: JobTask) -> String {
        let entry = task.engine.params["EntryModule"]?.stringValue
        let module = entry.flatMap { path in task.inputSources.first { $0.target == path }?.source }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let bytes = (try? encoder.encode(Key(engine: task.engine.normalizedType, params: task.engine, env: task.env, module: module))) ?? Data()
        return "sha256:" + SHA256.hash(data: bytes).hexString
    }
}
