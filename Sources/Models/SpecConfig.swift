/// A typed plug-in configuration: an engine, a publisher, an input source or a published result.
///
/// Mirrors Bacalhau's `SpecConfig{Type, Params}`; type names are compared case-insensitively,
/// as Bacalhau does.
///
/// ```swift
/// let engine = SpecConfig(type: "wasm", params: ["EntryModule": "/app/main.wasm"])
/// ```
public struct SpecConfig: Codable, Sendable, Hashable {
    /// The plug-in name, e.g. `wasm`, `inline`, `local`.
    public var type: String
    /// Plug-in specific parameters.
    public var params: [String: JSONValue]

    public init(type: String, params: [String: JSONValue] = [:]) {
        self.type = type
        self.params = params
    }

    enum CodingKeys: String, CodingKey {
        case type = "Type"
        case params = "Params"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        type = try container.decodeIfPresent(String.self, forKey: .type) ?? ""
        params = try container.decodeIfPresent([String: JSONValue].self, forKey: .params) ?? [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        if !params.isEmpty { try container.encode(params, forKey: .params) }
    }

    /// The lower-cased type, the form used for matching.
    public var normalizedType: String { type.lowercased() }

    /// True when no type was given.
    public var isEmpty: Bool { type.isEmpty }
}
