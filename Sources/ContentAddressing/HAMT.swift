/// UnixFS HAMT directories, built the way boxo's insert-only sharding produces them.
///
/// Entries go to buckets by the bytes of murmur3-x64-128's first word (big-endian): byte `d`
/// at depth `d`, for fanout 256. A bucket with one entry becomes a link named `%02X` + the
/// entry name; a bucket with several becomes a child shard named `%02X`.
public enum HAMTBuilder {
    public static let fanout = 256
    public static let murmur3HashType: UInt64 = 0x22

    public static func build(_ entries: [DirectoryEntry], options: ImportOptions, sink: BlockSink) throws -> ImportedNode {
        let hashed = entries.map { (entry: $0, hash: Murmur3.x64_128h1BigEndian($0.name)) }
        return try shard(hashed, depth: 0, options: options, sink: sink)
    }

    static func shard(
        _ entries: [(entry: DirectoryEntry, hash: [UInt8])], depth: Int, options: ImportOptions, sink: BlockSink
    ) throws -> ImportedNode {
        guard depth < 8 else {
            throw ContentError("HAMT: \(entries.count) names share all 64 hash bits; cannot shard them")
        }
        var buckets: [Int: [(entry: DirectoryEntry, hash: [UInt8])]] = [:]
        for item in entries { buckets[Int(item.hash[depth]), default: []].append(item) }
        var links: [PBLink] = []
        var bitfield = [UInt8](repeating: 0, count: 32)
        var size: UInt64 = 0
        for bucket in buckets.keys.sorted() {
            let members = buckets[bucket]!
            bitfield[31 - bucket / 8] |= UInt8(1 << (bucket % 8))
            let prefix = bucketName(bucket)
            if members.count == 1 {
                let entry = members[0].entry
                links.append(PBLink(hash: entry.node.cid, name: prefix + entry.name, tsize: entry.node.tsize))
                size += entry.node.size
            } else {
                let child = try shard(members, depth: depth + 1, options: options, sink: sink)
                links.append(PBLink(hash: child.cid, name: prefix, tsize: child.tsize))
                size += child.size
            }
        }
        // go-bitfield's Bytes() drops leading zero bytes.
        let stripped = Array(bitfield.drop { $0 == 0 })
        let data = UnixFSData(kind: .hamtShard, data: stripped, hashType: murmur3HashType, fanout: UInt64(fanout))
        let block = PBNode(links: links, data: data.encode()).encode()
        let cid = options.dagPBCID(block)
        try sink(cid, block)
        return ImportedNode(cid: cid, size: size, tsize: UInt64(block.count) + links.reduce(0) { $0 + ($1.tsize ?? 0) })
    }

    /// A bucket's link-name prefix: two uppercase hex digits.
    public static func bucketName(_ bucket: Int) -> [UInt8] {
        let digits = Array("0123456789ABCDEF".utf8)
        return [digits[bucket >> 4], digits[bucket & 0xf]]
    }

    /// The bucket path of a name, for lookups in an existing HAMT.
    public static func hashBytes(_ name: [UInt8]) -> [UInt8] {
        Murmur3.x64_128h1BigEndian(name)
    }
}

/// MurmurHash3, x64 128-bit variant, seed 0.
enum Murmur3 {
    /// The first 64-bit word of the hash, as 8 big-endian bytes.
    static func x64_128h1BigEndian(_ data: [UInt8]) -> [UInt8] {
        let h1 = x64_128(data).h1
        return (0..<8).map { UInt8(truncatingIfNeeded: h1 >> (56 - 8 * UInt64($0))) }
    }

    static func x64_128(_ data: [UInt8], seed: UInt64 = 0) -> (h1: UInt64, h2: UInt64) {
        let c1: UInt64 = 0x87c3_7b91_1142_53d5
        let c2: UInt64 = 0x4cf5_ad43_2745_937f
        var h1 = seed
        var h2 = seed
        let blocks = data.count / 16
        func read64(_ offset: Int) -> UInt64 {
            var value: UInt64 = 0
            for index in 0..<8 { value |= UInt64(data[offset + index]) << (8 * UInt64(index)) }
            return value
        }
        for block in 0..<blocks {
            var k1 = read64(block * 16)
            var k2 = read64(block * 16 + 8)
            k1 = k1 &* c1
            k1 = rotl(k1, 31)
            k1 = k1 &* c2
            h1 ^= k1
            h1 = rotl(h1, 27)
            h1 = h1 &+ h2
            h1 = h1 &* 5 &+ 0x52dc_e729
            k2 = k2 &* c2
            k2 = rotl(k2, 33)
            k2 = k2 &* c1
            h2 ^= k2
            h2 = rotl(h2, 31)
            h2 = h2 &+ h1
            h2 = h2 &* 5 &+ 0x3849_5ab5
        }
        let tail = blocks * 16
        var k1: UInt64 = 0
        var k2: UInt64 = 0
        let remaining = data.count & 15
        if remaining > 8 {
            for index in stride(from: remaining - 1, through: 8, by: -1) {
                k2 ^= UInt64(data[tail + index]) << (8 * UInt64(index - 8))
            }
            k2 = k2 &* c2
            k2 = rotl(k2, 33)
            k2 = k2 &* c1
            h2 ^= k2
        }
        if remaining > 0 {
            for index in stride(from: min(remaining, 8) - 1, through: 0, by: -1) {
                k1 ^= UInt64(data[tail + index]) << (8 * UInt64(index))
            }
            k1 = k1 &* c1
            k1 = rotl(k1, 31)
            k1 = k1 &* c2
            h1 ^= k1
        }
        h1 ^= UInt64(data.count)
        h2 ^= UInt64(data.count)
        h1 = h1 &+ h2
        h2 = h2 &+ h1
        h1 = fmix(h1)
        h2 = fmix(h2)
        h1 = h1 &+ h2
        h2 = h2 &+ h1
        return (h1, h2)
    }

    static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    static func fmix(_ k: UInt64) -> UInt64 {
        var k = k
        k ^= k >> 33
        k = k &* 0xff51_afd7_ed55_8ccd
        k ^= k >> 33
        k = k &* 0xc4ce_b9fe_1a85_ec53
        k ^= k >> 33
        return k
    }
}
