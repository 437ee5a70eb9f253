/// CAR (content-addressable archive) files: version 1 written the way `ipfs dag export` does,
/// versions 1 and 2 read with every block checked against its CID.
public enum CAR {
    /// The varint-prefixed header for `roots`: canonical dag-cbor `{"roots": [...], "version": 1}`.
    public static func header(roots: [CID]) -> [UInt8] {
        var cbor: [UInt8] = [0xa2, 0x65]
        cbor.append(contentsOf: Array("roots".utf8))
        cbor.append(contentsOf: CBOR.head(major: 4, UInt64(roots.count)))
        for root in roots {
            cbor.append(contentsOf: [0xd8, 0x2a])  // tag 42
            let bytes = [0x00] + root.bytes
            cbor.append(contentsOf: CBOR.head(major: 2, UInt64(bytes.count)))
            cbor.append(contentsOf: bytes)
        }
        cbor.append(0x67)
        cbor.append(contentsOf: Array("version".utf8))
        cbor.append(0x01)
        return Varint.encode(UInt64(cbor.count)) + cbor
    }

    /// One section: `varint(len) CID block`.
    public static func section(cid: CID, block: [UInt8]) -> [UInt8] {
        let cidBytes = cid.bytes
        return Varint.encode(UInt64(cidBytes.count + block.count)) + cidBytes + block
    }

    /// A parsed archive.
    public struct Archive: Sendable {
        public var version: Int
        public var roots: [CID]
        public var blocks: [(cid: CID, block: [UInt8])]
    }

    /// Reads a CARv1 or CARv2 archive. Every block must hash to its CID; any corruption or
    /// truncation is an error that says where.
    public static func read(_ bytes: [UInt8], verify: Bool = true) throws -> Archive {
        let pragma: [UInt8] = [0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02]
        if bytes.starts(with: pragma) {
            guard bytes.count >= 51 else { throw ContentError("CARv2 header is truncated") }
            func u64(_ offset: Int) -> UInt64 {
                (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
            }
            let dataOffset = u64(11 + 16)
            let dataSize = u64(11 + 24)
            guard dataOffset <= UInt64(bytes.count), dataSize <= UInt64(bytes.count) - dataOffset else {
                throw ContentError("CARv2 data section (offset \(dataOffset), size \(dataSize)) lies outside the \(bytes.count)-byte file")
            }
            var inner = try readV1(Array(bytes[Int(dataOffset)..<Int(dataOffset + dataSize)]), verify: verify)
            inner.version = 2
            return inner
        }
        return try readV1(bytes, verify: verify)
    }

    static func readV1(_ bytes: [UInt8], verify: Bool) throws -> Archive {
        var offset = 0
        let headerLength = try Varint.decode(bytes, at: &offset)
        guard headerLength > 0, headerLength <= UInt64(bytes.count - offset) else {
            throw ContentError("CAR header length \(headerLength) exceeds the \(bytes.count - offset) bytes that follow")
        }
        let headerEnd = offset + Int(headerLength)
        var reader = CBOR.Reader(bytes: Array(bytes[offset..<headerEnd]))
        let header = try reader.value()
        guard case .map(let fields) = header else { throw ContentError("CAR header is not a CBOR map") }
        guard case .unsigned(let version)? = fields["version"] else { throw ContentError("CAR header has no version") }
        guard version == 1 else { throw ContentError("CAR header version \(version) inside a CARv1 section") }
        var roots: [CID] = []
        if case .array(let items)? = fields["roots"] {
            for item in items {
                guard case .tag(42, .bytes(let raw)) = item, raw.first == 0 else {
                    throw ContentError("CAR header root is not a CID (tag 42)")
                }
                roots.append(try CID(bytes: Array(raw.dropFirst())))
            }
        } else {
            throw ContentError("CAR header has no roots")
        }
        offset = headerEnd
        var blocks: [(cid: CID, block: [UInt8])] = []
        while offset < bytes.count {
            let start = offset
            let length = try Varint.decode(bytes, at: &offset)
            guard length > 0, length <= UInt64(bytes.count - offset) else {
                throw ContentError("CAR section at byte \(start) claims \(length) bytes, \(bytes.count - offset) remain (truncated)")
            }
            let end = offset + Int(length)
            let sectionBytes = Array(bytes[offset..<end])
            var inner = 0
            let cid = try CID.decode(sectionBytes, at: &inner)
            let block = Array(sectionBytes[inner...])
            if verify {
                guard try cid.multihash.verify(block) else {
                    throw ContentError("CAR block \(cid) at byte \(start) does not match its CID (corrupt data)", code: .corrupt)
                }
            }
            blocks.append((cid, block))
            offset = end
        }
        return Archive(version: 1, roots: roots, blocks: blocks)
    }
}

/// The small part of CBOR that CAR headers use.
enum CBOR {
    indirect enum Value: Sendable {
        case unsigned(UInt64)
        case negative(UInt64)
        case bytes([UInt8])
        case text(String)
        case array([Value])
        case map([String: Value])
        case tag(UInt64, Value)
        case simple(UInt8)
    }

    static func head(major: UInt8, _ value: UInt64) -> [UInt8] {
        let base = major << 5
        switch value {
        case 0..<24: return [base | UInt8(value)]
        case 24..<256: return [base | 24, UInt8(value)]
        case 256..<65536: return [base | 25, UInt8(value >> 8), UInt8(value & 0xff)]
        case 65536..<4_294_967_296: return [base | 26] + (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt64($0))) }
        default: return [base | 27] + (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) }
        }
    }

    struct Reader {
        let bytes: [UInt8]
        var offset = 0
        var depth = 0

        init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        mutating func argument(_ info: UInt8) throws -> UInt64 {
            switch info {
            case 0..<24: return UInt64(info)
            case 24, 25, 26, 27:
                let count = 1 << Int(info - 24)
                guard offset + count <= bytes.count else { throw ContentError("truncated CBOR in CAR header") }
                var value: UInt64 = 0
                for _ in 0..<count {
                    value = value << 8 | UInt64(bytes[offset])
                    offset += 1
                }
                return value
            default: throw ContentError("unsupported CBOR encoding in CAR header")
            }
        }

        mutating func value() throws -> Value {
            guard offset < bytes.count else { throw ContentError("truncated CBOR in CAR header") }
            depth += 1
            defer { depth -= 1 }
            guard depth < 16 else { throw ContentError("CBOR in CAR header nests too deeply") }
            let initial = bytes[offset]
            offset += 1
            let major = initial >> 5
            let info = initial & 0x1f
            switch major {
            case 0: return .unsigned(try argument(info))
            case 1: return .negative(try argument(info))
            case 2, 3:
                let length = try argument(info)
                guard length <= UInt64(bytes.count - offset) else { throw ContentError("truncated CBOR string in CAR header") }
                let slice = Array(bytes[offset..<offset + Int(length)])
                offset += Int(length)
                return major == 2 ? .bytes(slice) : .text(String(decoding: slice, as: UTF8.self))
            case 4:
                let count = try argument(info)
                guard count <= UInt64(bytes.count) else { throw ContentError("CBOR array too long in CAR header") }
                return .array(try (0..<count).map { _ in try value() })
            case 5:
                let count = try argument(info)
                guard count <= UInt64(bytes.count) else { throw ContentError("CBOR map too long in CAR header") }
                var map: [String: Value] = [:]
                for _ in 0..<count {
                    guard case .text(let key) = try value() else { throw ContentError("CBOR map key in CAR header is not text") }
                    map[key] = try value()
                }
                return .map(map)
            case 6: return .tag(try argument(info), try value())
            default: return .simple(info)
            }
        }
    }
}
