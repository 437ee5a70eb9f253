public import ContentAddressing
import Foundation

/// What a UnixFS node is.
public enum UnixFSKind: Sendable, Equatable {
    case file(size: UInt64)
    case directory
    case hamtDirectory
    case symlink(target: String)
}

/// One directory entry as listed.
public struct ListedEntry: Sendable, Equatable {
    public var name: String
    public var cid: CID
    public var tsize: UInt64
}

/// Reads UnixFS data back out of a store: files (whole or a byte range, streamed), directory
/// listings (basic and HAMT), paths, and whole trees onto disk.
public struct Exporter {
    public let store: FileBlockStore

    public init(store: FileBlockStore) {
        self.store = store
    }

    public func kind(_ cid: CID) throws -> UnixFSKind {
        if cid.codec == CID.raw { return .file(size: UInt64(try store.require(cid).count)) }
        guard cid.codec == CID.dagPB else { throw ContentError("\(cid) is \(cid.codecName), not UnixFS (dag-pb or raw)") }
        let node = try PBNode.decode(try store.require(cid))
        guard let data = node.data else { throw ContentError("\(cid) is a dag-pb node without UnixFS data") }
        let unixfs = try UnixFSData.decode(data)
        switch unixfs.kind {
        case .file, .raw: return .file(size: unixfs.fileSize ?? UInt64(unixfs.data?.count ?? 0))
        case .directory: return .directory
        case .hamtShard: return .hamtDirectory
        case .symlink: return .symlink(target: String(decoding: unixfs.data ?? [], as: UTF8.self))
        case .metadata: throw ContentError("\(cid) is a UnixFS metadata node, which holds no file")
        }
    }

    /// Streams a file's bytes, or the `range` of them, to `write`, skipping subtrees outside
    /// the range without reading them.
    public func read(_ cid: CID, range: Range<UInt64>? = nil, write: ([UInt8]) throws -> Void) throws {
        let total: UInt64
        switch try kind(cid) {
        case .file(let size): total = size
        case .directory, .hamtDirectory: throw ContentError("\(cid) is a directory, not a file")
        case .symlink: throw ContentError("\(cid) is a symlink, not a file")
        }
        let wanted = range.map { $0.clamped(to: 0..<total) } ?? 0..<total
        guard !wanted.isEmpty else { return }
        try read(cid, offset: 0, wanted: wanted, write: write)
    }

    private func read(_ cid: CID, offset: UInt64, wanted: Range<UInt64>, write: ([UInt8]) throws -> Void) throws {
        let block = try store.require(cid)
        if cid.codec == CID.raw {
            try emit(block, at: offset, wanted: wanted, write: write)
            return
        }
        let node = try PBNode.decode(block)
        let unixfs = try UnixFSData.decode(node.data ?? [])
        if let data = unixfs.data, !data.isEmpty { try emit(data, at: offset, wanted: wanted, write: write) }
        var childOffset = offset + UInt64(unixfs.data?.count ?? 0)
        guard unixfs.blockSizes.count == node.links.count else {
            if node.links.isEmpty { return }
            throw ContentError("\(cid) has \(node.links.count) links but \(unixfs.blockSizes.count) blocksizes")
        }
        for (link, size) in zip(node.links, unixfs.blockSizes) {
            let childRange = childOffset..<childOffset + size
            if childRange.overlaps(wanted) { try read(link.hash, offset: childOffset, wanted: wanted, write: write) }
            childOffset += size
            if childOffset >= wanted.upperBound { break }
        }
    }

    private func emit(_ bytes: [UInt8], at offset: UInt64, wanted: Range<UInt64>, write: ([UInt8]) throws -> Void) throws {
        let range = offset..<offset + UInt64(bytes.count)
        let overlap = range.clamped(to: wanted)
        guard !overlap.isEmpty else { return }
        let start = Int(overlap.lowerBound - offset)
        let end = Int(overlap.upperBound - offset)
        try write(start == 0 && end == bytes.count ? bytes : Array(bytes[start..<end]))
    }

    /// A directory's entries in stored order (HAMT shards flattened, prefixes removed).
    public func list(_ cid: CID) throws -> [ListedEntry] {
        switch try kind(cid) {
        case .directory:
            return try PBNode.decode(try store.require(cid)).links.map {
                ListedEntry(name: $0.nameString, cid: $0.hash, tsize: $0.tsize ?? 0)
            }
        case .hamtDirectory:
            var entries: [ListedEntry] = []
            try listShard(cid, into: &entries)
            return entries
        case .file, .symlink:
            throw ContentError("\(cid) is not a directory")
        }
    }

    private func listShard(_ cid: CID, into entries: inout [ListedEntry]) throws {
        for link in try PBNode.decode(try store.require(cid)).links {
            let name = link.name ?? []
            if name.count == 2 {
                try listShard(link.hash, into: &entries)
            } else if name.count > 2 {
                entries.append(ListedEntry(name: String(decoding: name.dropFirst(2), as: UTF8.self), cid: link.hash, tsize: link.tsize ?? 0))
            }
        }
    }

    /// Follows `path` (names separated by `/`) from `root`.
    public func resolve(_ root: CID, path: String) throws -> CID {
        var current = root
        for component in path.split(separator: "/") where !component.isEmpty {
            current = try child(of: current, named: String(component)) { _ in }
        }
        return current
    }

    /// The entry `name` of directory `directory`, calling `visit` for every block looked at on
    /// the way (the directory's block, and each HAMT shard), which is what proves the path.
    public func child(of directory: CID, named name: String, visit: (CID) -> Void) throws -> CID {
        let bytes = Array(name.utf8)
        switch try kind(directory) {
        case .directory:
            visit(directory)
            guard let link = try PBNode.decode(try store.require(directory)).links.first(where: { $0.name == bytes }) else {
                throw ContentError("no entry named \"\(name)\" in \(directory)")
            }
            return link.hash
        case .hamtDirectory:
            let hash = HAMTBuilder.hashBytes(bytes)
            var shard = directory
            for depth in 0..<hash.count {
                visit(shard)
                let prefix = HAMTBuilder.bucketName(Int(hash[depth]))
                let links = try PBNode.decode(try store.require(shard)).links
                guard let link = links.first(where: { ($0.name ?? []).starts(with: prefix) && (($0.name ?? []).count == 2 || Array(($0.name ?? []).dropFirst(2)) == bytes) })
                else { break }
                if (link.name ?? []).count > 2 { return link.hash }
                shard = link.hash
            }
            throw ContentError("no entry named \"\(name)\" in \(directory)")
        case .file, .symlink:
            throw ContentError("\"\(name)\": \(directory) is not a directory")
        }
    }

    /// Writes the tree at `cid` to `destination` (a file, a folder, or a symlink); `written`
    /// hears the size of each piece of file data written.
    public func extract(_ cid: CID, to destination: URL, written: (Int) -> Void = { _ in }) throws {
        let fm = FileManager.default
        switch try kind(cid) {
        case .file:
            fm.createFile(atPath: destination.path, contents: nil)
            let handle = try FileHandle(forWritingTo: destination)
            defer { try? handle.close() }
            try read(cid) {
                try handle.write(contentsOf: $0)
                written($0.count)
            }
        case .directory, .hamtDirectory:
            try fm.createDirectory(at: destination, withIntermediateDirectories: true)
            for entry in try list(cid) {
                guard !entry.name.isEmpty, entry.name != ".", entry.name != "..", !entry.name.contains("/"), !entry.name.contains("\0") else {
                    throw ContentError("refusing directory entry \"\(entry.name)\" in \(cid): not a plain file name")
                }
                try extract(entry.cid, to: destination.appendingPathComponent(entry.name), written: written)
            }
        case .symlink(let target):
            try fm.createSymbolicLink(atPath: destination.path, withDestinationPath: target)
        }
    }
}
