public import Foundation
import Models

/// Decodes API bodies (jobs, node decisions) with errors that name the field, as a job file's
/// errors do.
public enum RequestDecoding {
    public static func decode<T: Decodable>(_ type: T.Type, json: Data) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: json)
        } catch let error as DecodingError {
            throw CodError(.invalidJob, describe(error))
        } catch {
            throw CodError(.badRequest, "the request body is not valid JSON: \(error)")
        }
    }

    /// `Tasks[0].Timeouts.ExecutionTimeout: expected a number, got a string`.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            var text = ""
            for key in codingPath {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : "." + key.stringValue
                }
            }
            return text.isEmpty ? "(top level)" : text
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "the job spec has 1 problem:\n  - \(path(context.codingPath)): expected \(friendly(type)); \(context.debugDescription)"
        case .valueNotFound(let type, let context):
            return "the job spec has 1 problem:\n  - \(path(context.codingPath)): expected \(friendly(type)), got null"
        case .keyNotFound(let key, let context):
            return "the job spec has 1 problem:\n  - \(path(context.codingPath + [key])): required"
        case .dataCorrupted(let context):
            return "the job spec has 1 problem:\n  - \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "the job spec could not be read: \(error)"
        }
    }

    static func friendly(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type, is UInt64.Type, is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "a mapping" }
            return "a \(name)"
        }
    }
}
