/// Why bytes or text could not be read as content-addressed data. The message names the
/// offending part and position, for users and logs; the code is what callers decide on.
public struct ContentError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The bytes or text are not valid content (a bad CID, a broken block or CAR).
        case malformed
        /// A block the DAG needs is not in this store.
        case missingBlock
        /// A path inside a DAG names an entry that does not exist.
        case pathNotFound
        /// Stored bytes no longer match their CID.
        case corrupt
        /// Nothing pins the content.
        case notPinned
        /// The store's disk refused a read or write.
        case storage
    }

    public var code: Code
    public var description: String

    public init(_ description: String, code: Code = .malformed) {
        self.code = code
        self.description = description
    }

    /// Whether the content (or part of it) is absent, rather than wrong.
    public var isMissing: Bool { code == .missingBlock || code == .pathNotFound || code == .notPinned }
}
