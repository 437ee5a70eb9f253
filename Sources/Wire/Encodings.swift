public import Foundation

extension Sequence where Element == UInt8 {
    /// Lowercase hex, two digits a byte (how digests are shown and stored).
    public var hexString: String { map { String(format: "%02x", $0) }.joined() }
}

/// Base64url without padding (RFC 4648 §5): tokens, keys and challenges that travel in URLs
/// and headers.
public enum Base64URL {
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The bytes `text` encodes; nil when it is not base64url.
    public static func decode(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}
