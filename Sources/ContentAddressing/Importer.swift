/// How data is cut into blocks; the presets match kubo's.
public struct ImportOptions: Hashable, Sendable {
    public var cidVersion: Int
    /// Leaves as raw blocks (codec 0x55) rather than dag-pb UnixFS File nodes.
    public var rawLeaves: Bool
    public var chunkSize: Int
    /// Links per internal file node.
    public var maxLinks: Int
    /// Directory size above which a HAMT is used.
    public var hamtThreshold: Int
    /// kubo up to 0.39 shards at `size >= threshold`; 0.40 and later at `size > threshold`.
    public var hamtAtThreshold: Bool
    /// Estimate the directory size from its block bytes (unixfs-v1-2025) instead of the sum of
    /// name and CID lengths.
    public var hamtEstimatesBlockBytes: Bool

    public init(
        cidVersion: Int = 0, rawLeaves: Bool? = nil, chunkSize: Int = 262_144, maxLinks: Int = 174,
        hamtThreshold: Int = 262_144, hamtAtThreshold: Bool = false, hamtEstimatesBlockBytes: Bool = false
    ) {
        self.cidVersion = cidVersion
        // CIDv1 implies raw leaves unless told otherwise, as in kubo.
        self.rawLeaves = rawLeaves ?? (cidVersion == 1)
        self.chunkSize = chunkSize
        self.maxLinks = maxLinks
        self.hamtThreshold = hamtThreshold
        self.hamtAtThreshold = hamtAtThreshold
        self.hamtEstimatesBlockBytes = hamtEstimatesBlockBytes
    }

    /// kubo's default: CIDv0, dag-pb leaves, 256 KiB chunks, 174 links.
    public static let kuboDefault = ImportOptions()
    /// `ipfs add --cid-version 1`.
    public static let cidV1 = ImportOptions(cidVersion: 1)
    /// IPIP-499's `unixfs-v1-2025` profile.
    public static let unixfsV1_2025 = ImportOptions(
        cidVersion: 1, rawLeaves: true, chunkSize: 1 << 20, maxLinks: 1024, hamtEstimatesBlockBytes: true)

    /// The CID of a dag-pb block under these options.
    public func dagPBCID(_ block: [UInt8]) -> CID {
        let hash = Multihash.sha256(block)
        return cidVersion == 0 ? CID(v0: hash) : CID(v1: CID.dagPB, multihash: hash)
    }
}

/// A node the importer produced: its CID, the payload bytes below it, and its cumulative size
/// (all block bytes below it, the `Tsize` a parent's link carries).
public struct ImportedNode: Hashable, Sendable {
    public var cid: CID
    public var size: UInt64
    public var tsize: UInt64

    public init(cid: CID, size: UInt64, tsize: UInt64) {
        self.cid = cid
        self.size = size
        self.tsize = tsize
    }
}

/// Receives each block as it is made.
public typealias BlockSink = (CID, [UInt8]) throws -> Void

/// Imports one file with kubo's balanced layout, streaming: feed bytes with `write`, then
/// `finish`. Memory holds one chunk and at most `maxLinks` links per tree level.
public struct FileImporter {
    public let options: ImportOptions
    let sink: BlockSink
    private var buffer: [UInt8] = []
    /// levels[d] holds the children of the open node at height d + 1.
    private var levels: [[ImportedNode]] = [[]]
    private var leafCount = 0

    public init(options: ImportOptions, sink: @escaping BlockSink) {
        self.options = options
        self.sink = sink
    }

    public mutating func write(_ bytes: some Collection<UInt8>) throws {
        var remaining = bytes[...]
        // Reserve the chunk buffer only once a file turns out to need it: a small file then
        // costs no large allocation.
        if buffer.capacity < options.chunkSize, buffer.count + remaining.count >= options.chunkSize {
            buffer.reserveCapacity(options.chunkSize)
        }
        while !remaining.isEmpty {
            let take = min(options.chunkSize - buffer.count, remaining.count)
            buffer.append(contentsOf: remaining.prefix(take))
            remaining = remaining.dropFirst(take)
            if buffer.count == options.chunkSize {
                try addLeaf(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Ends the file and returns its root. A file of exactly N chunks has no empty last chunk.
    public mutating func finish() throws -> ImportedNode {
        if !buffer.isEmpty || leafCount == 0 {
            try addLeaf(buffer)
            buffer.removeAll()
        }
        var depth = 0
        while true {
            let higherHasChildren = levels[(depth + 1)...].contains { !$0.isEmpty }
            if !higherHasChildren, levels[depth].count == 1 { return levels[depth][0] }
            if !levels[depth].isEmpty { try commit(level: depth) }
            depth += 1
        }
    }

    private mutating func addLeaf(_ chunk: [UInt8]) throws {
        leafCount += 1
        let leaf: ImportedNode
        if options.rawLeaves {
            let cid = CID(v1: CID.raw, multihash: Multihash.sha256(chunk))
            try sink(cid, chunk)
            leaf = ImportedNode(cid: cid, size: UInt64(chunk.count), tsize: UInt64(chunk.count))
        } else {
            let unixfs = UnixFSData(kind: .file, data: chunk.isEmpty ? nil : chunk, fileSize: UInt64(chunk.count))
            let block = PBNode(data: unixfs.encode()).encode()
            let cid = options.dagPBCID(block)
            try sink(cid, block)
            leaf = ImportedNode(cid: cid, size: UInt64(chunk.count), tsize: UInt64(block.count))
        }
        levels[0].append(leaf)
        var depth = 0
        while levels[depth].count == options.maxLinks {
            try commit(level: depth)
            depth += 1
        }
    }

    /// Turns level `depth`'s children into one internal node, a child of level `depth + 1`.
    private mutating func commit(level depth: Int) throws {
        let children = levels[depth]
        levels[depth].removeAll(keepingCapacity: true)
        let unixfs = UnixFSData(kind: .file, fileSize: children.reduce(0) { $0 + $1.size }, blockSizes: children.map(\.size))
        let links = children.map { PBLink(hash: $0.cid, name: [], tsize: $0.tsize) }
        let block = PBNode(links: links, data: unixfs.encode()).encode()
        let cid = options.dagPBCID(block)
        try sink(cid, block)
        let node = ImportedNode(
            cid: cid, size: unixfs.fileSize ?? 0, tsize: UInt64(block.count) + children.reduce(0) { $0 + $1.tsize })
        if levels.count == depth + 1 { levels.append([]) }
        levels[depth + 1].append(node)
    }

    /// Imports a whole byte array at once.
    public static func importBytes(_ bytes: [UInt8], options: ImportOptions, sink: @escaping BlockSink) throws -> ImportedNode {
        var importer = FileImporter(options: options, sink: sink)
        try importer.write(bytes)
        return try importer.finish()
    }
}

/// One entry of a directory being built.
public struct DirectoryEntry: Hashable, Sendable {
    /// Name bytes as on disk.
    public var name: [UInt8]
    public var node: ImportedNode

    public init(name: [UInt8], node: ImportedNode) {
        self.name = name
        self.node = node
    }

    public init(name: String, node: ImportedNode) {
        self.init(name: Array(name.utf8), node: node)
    }
}

/// Builds UnixFS directories: a basic directory, or a HAMT past the size threshold.
public enum DirectoryBuilder {
    public static func build(_ entries: [DirectoryEntry], options: ImportOptions, sink: BlockSink) throws -> ImportedNode {
        let sorted = entries.sorted { $0.name.lexicographicallyPrecedes($1.name) }
        let basic = basicBlock(sorted)
        let estimate: Int
        if options.hamtEstimatesBlockBytes {
            estimate = basic.count
        } else {
            estimate = sorted.reduce(0) { $0 + $1.name.count + $1.node.cid.bytes.count }
        }
        let shard = options.hamtAtThreshold ? estimate >= options.hamtThreshold : estimate > options.hamtThreshold
        if shard {
            return try HAMTBuilder.build(sorted, options: options, sink: sink)
        }
        let cid = options.dagPBCID(basic)
        try sink(cid, basic)
        return ImportedNode(
            cid: cid, size: sorted.reduce(0) { $0 + $1.node.size },
            tsize: UInt64(basic.count) + sorted.reduce(0) { $0 + $1.node.tsize })
    }

    static func basicBlock(_ sorted: [DirectoryEntry]) -> [UInt8] {
        let links = sorted.map { PBLink(hash: $0.node.cid, name: $0.name, tsize: $0.node.tsize) }
        return PBNode(links: links, data: UnixFSData(kind: .directory).encode()).encode()
    }

    /// A symlink node: a dag-pb leaf holding the target path.
    public static func symlink(target: String, options: ImportOptions, sink: BlockSink) throws -> ImportedNode {
        let block = PBNode(data: UnixFSData(kind: .symlink, data: Array(target.utf8)).encode()).encode()
        let cid = options.dagPBCID(block)
        try sink(cid, block)
        return ImportedNode(cid: cid, size: 0, tsize: UInt64(block.count))
    }
}
