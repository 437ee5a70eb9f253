import Foundation
public import Models
import Wire
import Yams

/// Reads job specs written in YAML or JSON, the formats Bacalhau users already have.
///
/// ```swift
/// let job = try JobSpecParser.parse(text)   // throws CodError(.invalidJob) with field paths
/// ```
public enum JobSpecParser {
    /// Parses a job from YAML or JSON text. JSON is valid YAML, so one path handles both; quoted
    /// scalars stay strings (`"5"` is not the number 5).
    public static func parse(_ text: String) throws -> Job {
        if text.trimmingSpaces().isEmpty {
            throw CodError(.invalidJob, "the job spec is empty", hint: "pass a YAML or JSON file with a Job, e.g. cod job run job.yaml")
        }
        var object = try load(text)
        // `bacalhau job describe --output json` wraps the job as {"Job": {...}}; accept that too.
        if object["Tasks"] == nil, let inner = object["Job"] as? [String: Any] { object = inner }
        return try decode(object)
    }

    /// Parses a schedule (`cod schedule create -f`): Name, Schedule, JobTemplate.
    public static func parseSchedule(_ text: String) throws -> ScheduleSpec {
        if text.trimmingSpaces().isEmpty {
            throw CodError(.invalidJob, "the schedule file is empty", hint: "a schedule has Name, Schedule (Crons, TimeZone, ...) and JobTemplate")
        }
        return try decode(ScheduleSpec.self, load(text))
    }

    /// YAML or JSON text as a mapping, with the checks every spec gets.
    static func load(_ text: String) throws -> [String: Any] {
        let loaded: Any?
        do {
            // Checked first: Yams traps on a mapping key that is not a scalar, and aliases can
            // make a small file expand without end.
            if let node = try Yams.compose(yaml: text) {
                var budget = maxNodes
                try check(node, budget: &budget)
            }
            loaded = try Yams.load(yaml: text)
        } catch let error as CodError {
            throw error
        } catch {
            throw CodError(.invalidJob, "the job spec is not valid YAML or JSON: \(describeYAMLError(error))")
        }
        guard let object = loaded as? [String: Any] else {
            throw CodError(.invalidJob, "the spec must be a mapping with fields like Name, Type and Tasks")
        }
        return object
    }

    /// Decodes a job from JSON bytes (API bodies), with the same error reporting.
    public static func decode<T: Decodable>(_ type: T.Type, json: Data) throws -> T {
        try RequestDecoding.decode(type, json: json)
    }

    /// The most YAML nodes a job spec may expand to (aliases counted each time they are used).
    static let maxNodes = 200_000

    /// Refuses mapping keys that are not plain scalars and documents that expand past `maxNodes`.
    static func check(_ node: Node, budget: inout Int) throws {
        budget -= 1
        guard budget >= 0 else {
            throw CodError(.invalidJob, "the job spec expands to more than \(maxNodes) YAML nodes (through anchors and aliases)")
        }
        switch node {
        case .scalar, .alias:
            return
        case .mapping(let mapping):
            for (key, value) in mapping {
                guard case .scalar = key else {
                    throw CodError(.invalidJob, "the job spec has a mapping key that is not a plain name (a list or mapping used as a key)")
                }
                try check(value, budget: &budget)
            }
        case .sequence(let sequence):
            for item in sequence { try check(item, budget: &budget) }
        }
    }

    static func decode(_ object: [String: Any]) throws -> Job {
        try decode(Job.self, object)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ object: [String: Any]) throws -> T {
        let sanitized = sanitize(object)
        guard JSONSerialization.isValidJSONObject(sanitized) else {
            throw CodError(.invalidJob, "the spec contains values that are not plain YAML data (dates, binary)")
        }
        let data = try JSONSerialization.data(withJSONObject: sanitized)
        return try decode(T.self, json: data)
    }

    /// Turns YAML-specific scalars (dates, binary, null) into JSON-compatible values.
    static func sanitize(_ value: Any) -> Any {
        switch value {
        case let dict as [String: Any]: return dict.mapValues(sanitize)
        case let dict as [AnyHashable: Any]:
            var result: [String: Any] = [:]
            for (key, item) in dict { result["\(key)"] = sanitize(item) }
            return result
        case let array as [Any]: return array.map(sanitize)
        case let date as Date: return ISO8601DateFormatter().string(from: date)
        case let data as Data: return data.base64EncodedString()
        case is NSNull: return NSNull()
        case let string as String: return string
        case let bool as Bool: return bool
        case let int as Int: return int
        case let double as Double: return double.isFinite ? double : String(double)
        default: return "\(value)"
        }
    }

    static func describeYAMLError(_ error: any Error) -> String {
        if let yaml = error as? YamlError {
            switch yaml {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
                let where_ = "line \(mark.line), column \(mark.column)"
                return "\(problem) at \(where_)" + (context.map { " (\($0.text))" } ?? "")
            default:
                return "\(yaml)"
            }
        }
        return "\(error)"
    }

    /// Normalises and validates; throws one error listing every problem.
    public static func prepare(
        _ job: Job, normalizer: JobNormalizer = JobNormalizer(), validator: JobValidator = JobValidator()
    ) throws -> Job {
        try validator.prepare(job, normalizer: normalizer)
    }
}
