/// A content identifier: CIDv0 (a bare sha2-256 multihash, implicitly dag-pb) or CIDv1
/// (`version, codec, multihash`).
///
/// ```swift
/// let cid = try CID("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")
/// cid.toV1.description  // "bafybeicg2rebjoofv4kbyovkw7af3rpiitvnl6i7ckcywaq6xjcxnc2mby"
/// ```
public struct CID: Hashable, Sendable, CustomStringConvertible, Comparable {
    public let version: Int
    public let codec: UInt64
    public let multihash: Multihash

    public static let dagPB: UInt64 = 0x70
    public static let raw: UInt64 = 0x55
    public static let dagCBOR: UInt64 = 0x71

    /// A CIDv0; the multihash must be sha2-256.
    public init(v0 multihash: Multihash) {
        precondition(multihash.code == Multihash.sha2_256 && multihash.digest.count == 32, "CIDv0 needs a sha2-256 multihash")
        self.version = 0
        self.codec = Self.dagPB
        self.multihash = multihash
    }

    public init(v1 codec: UInt64, multihash: Multihash) {
        self.version = 1
        self.codec = codec
        self.multihash = multihash
    }

    /// The longest CID text accepted: a CID with a 64-byte digest is under 150 characters in
    /// any base; past this, decoding (quadratic for base58 and base36) is refused unread.
    public static let maxTextLength = 512

    /// Parses the text form: a CIDv0 (`Qm…`, base58btc) or a multibase CIDv1.
    public init(_ text: String) throws {
        let trimmed = Substring(text)
        guard !trimmed.isEmpty else { throw ContentError("empty CID") }
        guard trimmed.utf8.count <= Self.maxTextLength else {
            throw ContentError("\"\(text.prefix(20))…\" is not a CID: \(trimmed.utf8.count) characters, more than any CID has (\(Self.maxTextLength))")
        }
        if trimmed.count == 46, trimmed.hasPrefix("Qm") {
            let bytes = try Multibase.base58btc.decode(trimmed)
            try self.init(bytes: bytes)
            return
        }
        guard let base = Multibase(rawValue: trimmed.first!) else {
            throw ContentError("\"\(text.prefix(20))\" is not a CID: unknown multibase prefix '\(trimmed.first!)' (expected b, z, k or f, or Qm for CIDv0)")
        }
        let bytes = try base.decode(trimmed.dropFirst())
        try self.init(bytes: bytes)
        guard version == 1 else { throw ContentError("a CIDv0 cannot carry a multibase prefix") }
    }

    /// Parses the binary form; all bytes must be used.
    public init(bytes: [UInt8]) throws {
        var offset = 0
        self = try CID.decode(bytes, at: &offset)
        guard offset == bytes.count else { throw ContentError("\(bytes.count - offset) trailing bytes after the CID") }
    }

    /// Reads a binary CID at `offset`, advancing it (as in CAR sections and dag-pb links).
    public static func decode(_ bytes: [UInt8], at offset: inout Int) throws -> CID {
        if offset + 2 <= bytes.count, bytes[offset] == 0x12, bytes[offset + 1] == 0x20 {
            let multihash = try Multihash.decode(bytes, at: &offset)
            return CID(v0: multihash)
        }
        let version = try Varint.decode(bytes, at: &offset)
        guard version == 1 else { throw ContentError("unsupported CID version \(version)") }
        let codec = try Varint.decode(bytes, at: &offset)
        let multihash = try Multihash.decode(bytes, at: &offset)
        return CID(v1: codec, multihash: multihash)
    }

    /// The binary form.
    public var bytes: [UInt8] {
        if version == 0 { return multihash.bytes }
        var out: [UInt8] = [1]
        Varint.encode(codec, into: &out)
        out.append(contentsOf: multihash.bytes)
        return out
    }

    /// The canonical text: base58btc for v0, base32 (prefix `b`) for v1.
    public var description: String {
        version == 0 ? Multibase.base58btc.encode(bytes) : string(base: .base32)
    }

    /// The v1 text in another multibase.
    public func string(base: Multibase) -> String {
        if version == 0 { return toV1.string(base: base) }
        return String(base.rawValue) + base.encode(bytes)
    }

    /// The same content as a CIDv1.
    public var toV1: CID { version == 1 ? self : CID(v1: codec, multihash: multihash) }

    /// `text` as a CIDv1 string (the form nodes announce and datasets are stored under), or
    /// `text` unchanged when it is not a CID.
    public static func v1String(_ text: String) -> String {
        (try? CID(text))?.toV1.description ?? text
    }

    /// The same content as a CIDv0, when it can be one (dag-pb, sha2-256).
    public var toV0: CID? {
        if version == 0 { return self }
        guard codec == Self.dagPB, multihash.code == Multihash.sha2_256, multihash.digest.count == 32 else { return nil }
        return CID(v0: multihash)
    }

    /// A readable codec name for messages.
    public var codecName: String {
        switch codec {
        case Self.dagPB: return "dag-pb"
        case Self.raw: return "raw"
        case Self.dagCBOR: return "dag-cbor"
        default: return "0x" + String(codec, radix: 16)
        }
    }

    public static func < (lhs: CID, rhs: CID) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }
}
