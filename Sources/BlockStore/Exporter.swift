public import ContentAddressing
import Foundation
import SafeFS
#if canImport(Glibc)
import Glibc
#endif

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
        case .file, .raw:
            // The size is a claim: it must be what the node's own data and children add up to.
            var total = UInt64(unixfs.data?.count ?? 0)
            for size in unixfs.blockSizes { total = try Self.add(total, size, in: cid) }
            if let claimed = unixfs.fileSize, claimed != total {
                throw ContentError("\(cid) claims a file size of \(claimed) bytes but its blocks add up to \(total)")
            }
            return .file(size: unixfs.fileSize ?? total)
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
        try read(cid, offset: 0, wanted: wanted, depth: 0, write: write)
    }

    /// How deep a file's DAG may go; kubo's layouts stay far below it, and it bounds the stack.
    public static let maxFileDepth = 128

    private func read(_ cid: CID, offset: UInt64, wanted: Range<UInt64>, depth: Int, write: ([UInt8]) throws -> Void) throws {
        guard depth < Self.maxFileDepth else { throw ContentError("\(cid): file DAG deeper than \(Self.maxFileDepth) levels") }
        let block = try store.require(cid)
        if cid.codec == CID.raw {
            try emit(block, at: offset, wanted: wanted, write: write)
            return
        }
        let node = try PBNode.decode(block)
        let unixfs = try UnixFSData.decode(node.data ?? [])
        if let data = unixfs.data, !data.isEmpty { try emit(data, at: offset, wanted: wanted, write: write) }
        var childOffset = try Self.add(offset, UInt64(unixfs.data?.count ?? 0), in: cid)
        guard unixfs.blockSizes.count == node.links.count else {
            if node.links.isEmpty { return }
            throw ContentError("\(cid) has \(node.links.count) links but \(unixfs.blockSizes.count) blocksizes")
        }
        for (link, size) in zip(node.links, unixfs.blockSizes) {
            let childEnd = try Self.add(childOffset, size, in: cid)
            if (childOffset..<childEnd).overlaps(wanted) { try read(link.hash, offset: childOffset, wanted: wanted, depth: depth + 1, write: write) }
            childOffset = childEnd
            if childOffset >= wanted.upperBound { break }
        }
    }

    /// Sizes in a DAG come from outside: their sums are checked.
    static func add(_ a: UInt64, _ b: UInt64, in cid: CID) throws -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw ContentError("\(cid) claims block sizes whose sum overflows 64 bits") }
        return sum
    }

    private func emit(_ bytes: [UInt8], at offset: UInt64, wanted: Range<UInt64>, write: ([UInt8]) throws -> Void) throws {
        let (last, overflow) = offset.addingReportingOverflow(UInt64(bytes.count))
        guard !overflow else { throw ContentError("a file's block sizes overflow 64 bits") }
        let range = offset..<last
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
            try listShard(cid, depth: 0, into: &entries)
            return entries
        case .file, .symlink:
            throw ContentError("\(cid) is not a directory")
        }
    }

    private func listShard(_ cid: CID, depth: Int, into entries: inout [ListedEntry]) throws {
        // A 64-bit hash gives at most 8 levels of 256-way shards; deeper is crafted.
        guard depth < 64 else { throw ContentError("\(cid): HAMT shards nest deeper than 64 levels") }
        for link in try PBNode.decode(try store.require(cid)).links {
            let name = link.name ?? []
            if name.count == 2 {
                try listShard(link.hash, depth: depth + 1, into: &entries)
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
                throw ContentError("no entry named \"\(name)\" in \(directory)", code: .pathNotFound)
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
            throw ContentError("no entry named \"\(name)\" in \(directory)", code: .pathNotFound)
        case .file, .symlink:
            throw ContentError("\"\(name)\": \(directory) is not a directory")
        }
    }

    /// Writes the tree at `cid` to `destination` (a file or a folder, which must not exist);
    /// `written` hears the size of each piece of file data written.
    ///
    /// The DAG is hostile input: entries are created without following links (`ConfinedTree`),
    /// a name given twice in a folder is refused, symlinks must resolve inside the tree, a root
    /// that is itself a symlink is refused, and `limits` bound depth, entries and bytes. On a
    /// refusal the partial tree is removed.
    public func extract(
        _ cid: CID, to destination: URL, limits: ExportLimits = ExportLimits(), written: (Int) -> Void = { _ in }
    ) throws {
        var budget = ExportBudget(limits: limits)
        switch try kind(cid) {
        case .file:
            let fd = open(destination.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw ContentError("cannot create \(destination.path): \(String(cString: strerror(errno)))")
            }
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            do {
                try writeFile(cid, to: handle, budget: &budget, written: written)
            } catch {
                try? FileManager.default.removeItem(at: destination)
                throw error
            }
        case .directory, .hamtDirectory:
            let existed = FileManager.default.fileExists(atPath: destination.path)
            do {
                let tree = try ConfinedTree(creating: destination)
                try extractDirectory(cid, path: [], into: tree, depth: 0, budget: &budget, written: written)
                try tree.finish()
            } catch {
                if !existed { try? FileManager.default.removeItem(at: destination) }
                if let refusal = error as? ConfinedTree.Error { throw ContentError("\(cid): \(refusal)") }
                throw error
            }
        case .symlink(let target):
            throw ContentError("\(cid) is a symlink (to \(target)), not a file or folder; it cannot be written out on its own")
        }
    }

    private func extractDirectory(
        _ cid: CID, path: [String], into tree: ConfinedTree, depth: Int, budget: inout ExportBudget, written: (Int) -> Void
    ) throws {
        guard depth < budget.limits.maxDepth else {
            throw ContentError("\(cid) nests folders more than \(budget.limits.maxDepth) deep (ExportLimits.maxDepth)")
        }
        try tree.makeDirectory(path)
        var names = Set<String>()
        for entry in try list(cid) {
            guard ConfinedTree.isPlainName(entry.name) else {
                throw ContentError("refusing directory entry \"\(entry.name)\" in \(cid): not a plain file name")
            }
            guard names.insert(entry.name).inserted else {
                throw ContentError("refusing directory entry \"\(entry.name)\" in \(cid): the name is given twice")
            }
            try budget.countEntry(in: cid)
            let child = path + [entry.name]
            switch try kind(entry.cid) {
            case .file:
                let handle = try tree.createFile(child)
                try writeFile(entry.cid, to: handle, budget: &budget, written: written)
            case .directory, .hamtDirectory:
                try extractDirectory(entry.cid, path: child, into: tree, depth: depth + 1, budget: &budget, written: written)
            case .symlink(let target):
                try tree.makeSymlink(child, target: target)
            }
        }
    }

    private func writeFile(_ cid: CID, to handle: FileHandle, budget: inout ExportBudget, written: (Int) -> Void) throws {
        try read(cid) { bytes in
            try budget.countBytes(bytes.count, in: cid)
            try handle.write(contentsOf: bytes)
            written(bytes.count)
        }
    }
}

/// How much one export may write: a DAG can describe far more than it stores (the same
/// block linked a million times), so extraction counts what it writes, not what it reads.
public struct ExportLimits: Sendable, Equatable {
    /// Folders nested deeper than this are refused.
    public var maxDepth: Int
    /// At most this many entries (files, folders and links) in the whole tree.
    public var maxEntries: Int
    /// At most this many bytes of file data in the whole tree.
    public var maxBytes: UInt64

    public init(maxDepth: Int = 256, maxEntries: Int = 1_000_000, maxBytes: UInt64 = 1 << 40) {
        self.maxDepth = maxDepth
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
    }
}

struct ExportBudget {
    let limits: ExportLimits
    var entries = 0
    var bytes: UInt64 = 0

    mutating func countEntry(in cid: CID) throws {
        entries += 1
        guard entries <= limits.maxEntries else {
            throw ContentError("\(cid): the tree has more than \(limits.maxEntries) entries (ExportLimits.maxEntries)")
        }
    }

    mutating func countBytes(_ count: Int, in cid: CID) throws {
        bytes += UInt64(count)
        guard bytes <= limits.maxBytes else {
            throw ContentError("\(cid): the tree holds more than \(limits.maxBytes) bytes of file data (ExportLimits.maxBytes)")
        }
    }
}
