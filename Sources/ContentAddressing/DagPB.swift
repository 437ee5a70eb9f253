/// A dag-pb link: the child's CID, an optional name and an optional cumulative size.
public struct PBLink: Hashable, Sendable {
    public var hash: CID
    /// Name bytes exactly as stored (UTF-8 for names from disk; never normalised).
    public var name: [UInt8]?
    public var tsize: UInt64?

    public init(hash: CID, name: [UInt8]?, tsize: UInt64?) {
        self.hash = hash
        self.name = name
        self.tsize = tsize
    }

    public init(hash: CID, name: String, tsize: UInt64) {
        self.init(hash: hash, name: Array(name.utf8), tsize: tsize)
    }

    public var nameString: String { String(decoding: name ?? [], as: UTF8.self) }
}

/// A dag-pb node (codec 0x70).
///
/// Encoding follows kubo byte for byte: every link (field 2) before the data (field 1); inside
/// a link Hash, Name, Tsize. Decoding accepts either field order, as old data exists in both.
public struct PBNode: Hashable, Sendable {
    public var links: [PBLink]
    public var data: [UInt8]?

    public init(links: [PBLink] = [], data: [UInt8]?) {
        self.links = links
        self.data = data
    }

    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        for link in links {
            var body: [UInt8] = []
            let hash = link.hash.bytes
            body.append(0x0a)
            Varint.encode(UInt64(hash.count), into: &body)
            body.append(contentsOf: hash)
            if let name = link.name {
                body.append(0x12)
                Varint.encode(UInt64(name.count), into: &body)
                body.append(contentsOf: name)
            }
            if let tsize = link.tsize {
                body.append(0x18)
                Varint.encode(tsize, into: &body)
            }
            out.append(0x12)
            Varint.encode(UInt64(body.count), into: &out)
            out.append(contentsOf: body)
        }
        if let data {
            out.append(0x0a)
            Varint.encode(UInt64(data.count), into: &out)
            out.append(contentsOf: data)
        }
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws -> PBNode {
        var node = PBNode(data: nil)
        var offset = 0
        var sawData = false
        while offset < bytes.count {
            let key = try Varint.decode(bytes, at: &offset, multiformats: false)
            switch key {
            case 0x12:
                let body = try Protobuf.lengthDelimited(bytes, at: &offset, field: "PBNode.Links")
                node.links.append(try decodeLink(body))
            case 0x0a:
                guard !sawData else { throw ContentError("dag-pb node has two Data fields") }
                sawData = true
                node.data = try Protobuf.lengthDelimited(bytes, at: &offset, field: "PBNode.Data")
            default:
                throw ContentError("dag-pb node has an unexpected field (key 0x\(String(key, radix: 16))) at byte \(offset)")
            }
        }
        return node
    }

    static func decodeLink(_ bytes: [UInt8]) throws -> PBLink {
        var offset = 0
        var hash: CID?
        var name: [UInt8]?
        var tsize: UInt64?
        while offset < bytes.count {
            let key = try Varint.decode(bytes, at: &offset, multiformats: false)
            switch key {
            case 0x0a:
                guard hash == nil else { throw ContentError("dag-pb link has two Hash fields") }
                let cidBytes = try Protobuf.lengthDelimited(bytes, at: &offset, field: "PBLink.Hash")
                hash = try CID(bytes: cidBytes)
            case 0x12:
                guard name == nil else { throw ContentError("dag-pb link has two Name fields") }
                name = try Protobuf.lengthDelimited(bytes, at: &offset, field: "PBLink.Name")
            case 0x18:
                guard tsize == nil else { throw ContentError("dag-pb link has two Tsize fields") }
                tsize = try Varint.decode(bytes, at: &offset, multiformats: false)
            default:
                throw ContentError("dag-pb link has an unexpected field (key 0x\(String(key, radix: 16)))")
            }
        }
        guard let hash else { throw ContentError("dag-pb link without a Hash") }
        return PBLink(hash: hash, name: name, tsize: tsize)
    }
}

enum Protobuf {
    static func lengthDelimited(_ bytes: [UInt8], at offset: inout Int, field: String) throws -> [UInt8] {
        let length = try Varint.decode(bytes, at: &offset, multiformats: false)
        guard length <= UInt64(bytes.count - offset) else {
            throw ContentError("\(field) claims \(length) bytes but only \(bytes.count - offset) remain")
        }
        let value = Array(bytes[offset..<offset + Int(length)])
        offset += Int(length)
        return value
    }
}
