public import ContentAddressing
import Foundation

/// Merges the result directories of a job's partitions into one UnixFS directory, without
/// copying file data (the merged DAG links to the partitions' blocks):
///
/// - `stdout` and `stderr`: the partitions' streams one after another, in partition order;
/// - `exitCode`: 0 when every partition exited 0, else the first non-zero code;
/// - every other entry (the result folders) merged by path. A path written by one partition
///   keeps its name; folders written by several are merged inside; a file written by several
///   with the same content is kept once; otherwise the lowest partition's stays at the name and
///   each other partition's appears next to it as `<name>.partition-<index>`. Nothing is lost.
public struct ResultMerger {
    public let store: FileBlockStore
    let options = ImportOptions.cidV1

    public init(store: FileBlockStore) {
        self.store = store
    }

    /// Merges `partitions` (partition index, result root), which must all be in the store.
    public func merge(_ partitions: [(index: Int, root: CID)]) throws -> CID {
        let exporter = Exporter(store: store)
        let sorted = partitions.sorted { $0.index < $1.index }
        var stdout: [CID] = []
        var stderr: [CID] = []
        var exitCode = 0
        var others: [(index: Int, entry: ListedEntry)] = []
        for (index, root) in sorted {
            for entry in try exporter.list(root) {
                switch entry.name {
                case "stdout": stdout.append(entry.cid)
                case "stderr": stderr.append(entry.cid)
                case "exitCode":
                    var bytes: [UInt8] = []
                    try exporter.read(entry.cid) { bytes += $0 }
                    let code = Int(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                    if exitCode == 0 { exitCode = code }
                default: others.append((index, entry))
                }
            }
        }
        var entries = [
            DirectoryEntry(name: "stdout", node: try concatenate(stdout)),
            DirectoryEntry(name: "stderr", node: try concatenate(stderr)),
            DirectoryEntry(name: "exitCode", node: try FileImporter.importBytes(Array(String(exitCode).utf8), options: options, sink: store.put)),
        ]
        entries += try mergeEntries(others)
        return try DirectoryBuilder.build(entries, options: options, sink: store.put).cid
    }

    /// Entries of the same folder from several partitions, merged by the rule above.
    func mergeEntries(_ items: [(index: Int, entry: ListedEntry)]) throws -> [DirectoryEntry] {
        let exporter = Exporter(store: store)
        var byName: [String: [(index: Int, entry: ListedEntry)]] = [:]
        for item in items { byName[item.entry.name, default: []].append(item) }
        var result: [DirectoryEntry] = []
        for (name, versions) in byName {
            let kinds = try versions.map { try exporter.kind($0.entry.cid) }
            let allFolders = kinds.allSatisfy { $0 == .directory || $0 == .hamtDirectory }
            if versions.count > 1, allFolders {
                var children: [(index: Int, entry: ListedEntry)] = []
                for version in versions {
                    children += try exporter.list(version.entry.cid).map { (version.index, $0) }
                }
                result.append(DirectoryEntry(name: name, node: try DirectoryBuilder.build(try mergeEntries(children), options: options, sink: store.put)))
                continue
            }
            let first = versions[0]
            result.append(DirectoryEntry(name: name, node: ImportedNode(cid: first.entry.cid, size: first.entry.tsize, tsize: first.entry.tsize)))
            var kept: Set<CID> = [first.entry.cid]
            for version in versions.dropFirst() where kept.insert(version.entry.cid).inserted {
                result.append(DirectoryEntry(
                    name: "\(name).partition-\(version.index)",
                    node: ImportedNode(cid: version.entry.cid, size: version.entry.tsize, tsize: version.entry.tsize)))
            }
        }
        return result
    }

    /// One UnixFS file whose bytes are the given files' bytes in order (a file node linking to
    /// them; nothing is copied).
    func concatenate(_ files: [CID]) throws -> ImportedNode {
        let exporter = Exporter(store: store)
        var links: [PBLink] = []
        var sizes: [UInt64] = []
        var tsize: UInt64 = 0
        for file in files {
            guard case .file(let size) = try exporter.kind(file), size > 0 else { continue }
            let blockSize = try dagSize(file)
            links.append(PBLink(hash: file, name: nil, tsize: blockSize))
            sizes.append(size)
            tsize += blockSize
        }
        if links.isEmpty { return try FileImporter.importBytes([], options: options, sink: store.put) }
        if links.count == 1 { return ImportedNode(cid: links[0].hash, size: sizes[0], tsize: tsize) }
        let total = sizes.reduce(0, +)
        let block = PBNode(links: links, data: UnixFSData(kind: .file, fileSize: total, blockSizes: sizes).encode()).encode()
        let cid = options.dagPBCID(block)
        try store.put(cid, block)
        return ImportedNode(cid: cid, size: total, tsize: tsize + UInt64(block.count))
    }

    /// The bytes of a DAG's blocks (a link's Tsize).
    func dagSize(_ cid: CID) throws -> UInt64 {
        var total: UInt64 = 0
        try DAGWalker(store: store).walk(cid) { _, block in total += UInt64(block.count) }
        return total
    }
}
