/// The UnixFS `Data` message carried in a dag-pb node's data.
public struct UnixFSData: Hashable, Sendable {
    public enum Kind: UInt64, Sendable {
        case raw = 0, directory = 1, file = 2, metadata = 3, symlink = 4, hamtShard = 5
    }

    public var kind: Kind
    public var data: [UInt8]?
    public var fileSize: UInt64?
    public var blockSizes: [UInt64]
    public var hashType: UInt64?
    public var fanout: UInt64?
    public var mode: UInt32?
    /// The mtime message as stored (seconds and nanoseconds); kept so decoding round-trips.
    public var mtime: [UInt8]?

    public init(
        kind: Kind, data: [UInt8]? = nil, fileSize: UInt64? = nil, blockSizes: [UInt64] = [], hashType: UInt64? = nil,
        fanout: UInt64? = nil, mode: UInt32? = nil, mtime: [UInt8]? = nil
    ) {
        self.kind = kind
        self.data = data
        self.fileSize = fileSize
        self.blockSizes = blockSizes
        self.hashType = hashType
        self.fanout = fanout
        self.mode = mode
        self.mtime = mtime
    }

    /// Fields in field-number order; `blocksizes` unpacked, as kubo writes them.
    public func encode() -> [UInt8] {
        var out: [UInt8] = [0x08]
        Varint.encode(kind.rawValue, into: &out)
        if let data {
            out.append(0x12)
            Varint.encode(UInt64(data.count), into: &out)
            out.append(contentsOf: data)
        }
        if let fileSize {
            out.append(0x18)
            Varint.encode(fileSize, into: &out)
        }
        for size in blockSizes {
            out.append(0x20)
            Varint.encode(size, into: &out)
        }
        if let hashType {
            out.append(0x28)
            Varint.encode(hashType, into: &out)
        }
        if let fanout {
            out.append(0x30)
            Varint.encode(fanout, into: &out)
        }
        if let mode {
            out.append(0x38)
            Varint.encode(UInt64(mode), into: &out)
        }
        if let mtime {
            out.append(0x42)
            Varint.encode(UInt64(mtime.count), into: &out)
            out.append(contentsOf: mtime)
        }
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws -> UnixFSData {
        var offset = 0
        var kind: Kind?
        var result = UnixFSData(kind: .raw)
        while offset < bytes.count {
            let key = try Varint.decode(bytes, at: &offset, multiformats: false)
            switch key {
            case 0x08:
                let value = try Varint.decode(bytes, at: &offset, multiformats: false)
                guard let decoded = Kind(rawValue: value) else { throw ContentError("unknown UnixFS type \(value)") }
                kind = decoded
            case 0x12: result.data = try Protobuf.lengthDelimited(bytes, at: &offset, field: "UnixFS.Data")
            case 0x18: result.fileSize = try Varint.decode(bytes, at: &offset, multiformats: false)
            case 0x20: result.blockSizes.append(try Varint.decode(bytes, at: &offset, multiformats: false))
            case 0x22:
                // Packed blocksizes, which some writers produce.
                let packed = try Protobuf.lengthDelimited(bytes, at: &offset, field: "UnixFS.blocksizes")
                var inner = 0
                while inner < packed.count { result.blockSizes.append(try Varint.decode(packed, at: &inner, multiformats: false)) }
            case 0x28: result.hashType = try Varint.decode(bytes, at: &offset, multiformats: false)
            case 0x30: result.fanout = try Varint.decode(bytes, at: &offset, multiformats: false)
            case 0x38: result.mode = UInt32(truncatingIfNeeded: try Varint.decode(bytes, at: &offset, multiformats: false))
            case 0x42: result.mtime = try Protobuf.lengthDelimited(bytes, at: &offset, field: "UnixFS.mtime")
            default:
                throw ContentError("UnixFS data has an unexpected field (key 0x\(String(key, radix: 16)))")
            }
        }
        guard let kind else { throw ContentError("UnixFS data without a Type") }
        result.kind = kind
        return result
    }
}
