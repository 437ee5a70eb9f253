import Crypto

/// A self-describing hash: `varint(code) varint(length) digest`.
public struct Multihash: Hashable, Sendable {
    public let code: UInt64
    public let digest: [UInt8]

    public static let sha2_256: UInt64 = 0x12
    public static let identity: UInt64 = 0x00

    public init(code: UInt64, digest: [UInt8]) {
        self.code = code
        self.digest = digest
    }

    /// The SHA-256 multihash of `bytes`.
    public static func sha256(_ bytes: [UInt8]) -> Multihash {
        Multihash(code: sha2_256, digest: Array(SHA256.hash(data: bytes)))
    }

    /// The binary form.
    public var bytes: [UInt8] {
        var out = Varint.encode(code)
        Varint.encode(UInt64(digest.count), into: &out)
        out.append(contentsOf: digest)
        return out
    }

    /// Reads a multihash at `offset`, advancing it.
    public static func decode(_ bytes: [UInt8], at offset: inout Int) throws -> Multihash {
        let code = try Varint.decode(bytes, at: &offset)
        let length = try Varint.decode(bytes, at: &offset)
        guard length <= 128, offset + Int(length) <= bytes.count else {
            throw ContentError("multihash digest of \(length) bytes does not fit in the remaining \(bytes.count - offset)")
        }
        if code == sha2_256, length != 32 { throw ContentError("sha2-256 multihash with a \(length)-byte digest") }
        let digest = Array(bytes[offset..<offset + Int(length)])
        offset += Int(length)
        return Multihash(code: code, digest: digest)
    }

    /// Whether `block` hashes to this multihash. Only sha2-256 and identity are computed;
    /// other functions are reported as unsupported.
    public func verify(_ block: [UInt8]) throws -> Bool {
        switch code {
        case Self.sha2_256: return Array(SHA256.hash(data: block)) == digest
        case Self.identity: return block == digest
        default: throw ContentError("hash function 0x\(String(code, radix: 16)) is not supported (only sha2-256 and identity)")
        }
    }
}
