public import ContentAddressing

/// Which blocks a trustless-gateway CAR response carries.
public enum DAGScope: String, Sendable {
    /// The whole DAG below the target.
    case all
    /// What is needed to read the target: a whole file (or a byte range of it), or a
    /// directory's own blocks without its children's contents.
    case entity
    /// Only the target's block.
    case block
}

/// Chooses the blocks of a gateway CAR response: the blocks that prove the path from the root
/// to the target, then the target's blocks for the scope, in DFS order without duplicates.
public struct CARSelection {
    let store: FileBlockStore

    public init(store: FileBlockStore) {
        self.store = store
    }

    /// Resolves `path` under `root`; returns the target CID and the ordered CIDs to send.
    public func select(root: CID, path: String, scope: DAGScope, bytes: Range<UInt64>?) throws -> (target: CID, blocks: [CID]) {
        var order: [CID] = []
        var seen = Set<[UInt8]>()
        func add(_ cid: CID) {
            if cid.multihash.code == Multihash.identity { return }
            if seen.insert(cid.multihash.bytes).inserted { order.append(cid) }
        }
        var current = root
        let exporter = Exporter(store: store)
        for component in path.split(separator: "/") where !component.isEmpty {
            current = try exporter.child(of: current, named: String(component), visit: add)
        }
        switch scope {
        case .block:
            add(current)
        case .all:
            try DAGWalker(store: store).walk(current) { cid, _ in add(cid) }
        case .entity:
            switch try exporter.kind(current) {
            case .file:
                try fileBlocks(current, offset: 0, wanted: bytes, depth: 0, add: add)
            case .hamtDirectory:
                try shardBlocks(current, depth: 0, add: add)
            case .directory, .symlink:
                add(current)
            }
        }
        return (current, order)
    }

    /// The blocks of a file that overlap `wanted` (all of them when nil), in DFS order.
    private func fileBlocks(_ cid: CID, offset: UInt64, wanted: Range<UInt64>?, depth: Int, add: (CID) -> Void) throws {
        guard depth < Exporter.maxFileDepth else { throw ContentError("\(cid): file DAG deeper than \(Exporter.maxFileDepth) levels") }
        add(cid)
        guard cid.codec == CID.dagPB else { return }
        let node = try PBNode.decode(try store.require(cid))
        let unixfs = try UnixFSData.decode(node.data ?? [])
        var childOffset = try Exporter.add(offset, UInt64(unixfs.data?.count ?? 0), in: cid)
        for (link, size) in zip(node.links, unixfs.blockSizes) {
            let childEnd = try Exporter.add(childOffset, size, in: cid)
            let range = childOffset..<childEnd
            if wanted.map({ range.overlaps($0) || (size == 0 && $0.contains(childOffset)) }) ?? true {
                try fileBlocks(link.hash, offset: childOffset, wanted: wanted, depth: depth + 1, add: add)
            }
            childOffset = childEnd
        }
    }

    private func shardBlocks(_ cid: CID, depth: Int, add: (CID) -> Void) throws {
        guard depth < 64 else { throw ContentError("\(cid): HAMT shards nest deeper than 64 levels") }
        add(cid)
        for link in try PBNode.decode(try store.require(cid)).links where (link.name ?? []).count == 2 {
            try shardBlocks(link.hash, depth: depth + 1, add: add)
        }
    }
}
