/// Why bytes or text could not be read as content-addressed data. The message names the
/// offending part and position, for users and logs.
public struct ContentError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
