public import ContentAddressing
import Foundation

/// Adds files and folders from disk, streaming: memory holds one read buffer and the
/// importer's per-level links, whatever the file size.
public struct DiskImporter {
    public var options: ImportOptions
    /// Include names starting with a dot (kubo skips them unless `--hidden`).
    public var includeHidden: Bool
    let sink: BlockSink
    /// Called with the number of bytes read so far.
    var progress: ((UInt64) -> Void)?
    /// Hears each regular file added, with its path relative to the added folder.
    public var onFile: ((String, ImportedNode) -> Void)?
    private var bytesRead: UInt64 = 0

    public init(options: ImportOptions, includeHidden: Bool = false, progress: ((UInt64) -> Void)? = nil, sink: @escaping BlockSink) {
        self.options = options
        self.includeHidden = includeHidden
        self.progress = progress
        self.sink = sink
    }

    public mutating func add(_ url: URL) throws -> ImportedNode {
        try add(url, relative: "")
    }

    private mutating func add(_ url: URL, relative: String) throws -> ImportedNode {
        var info = stat()
        guard lstat(url.path, &info) == 0 else {
            throw ContentError("cannot read \(url.path): \(String(cString: strerror(errno)))")
        }
        switch info.st_mode & S_IFMT {
        case S_IFDIR:
            var entries: [DirectoryEntry] = []
            for name in try FileManager.default.contentsOfDirectory(atPath: url.path).sorted() {
                if !includeHidden, name.hasPrefix(".") { continue }
                let path = relative.isEmpty ? name : relative + "/" + name
                entries.append(DirectoryEntry(name: name, node: try add(url.appendingPathComponent(name), relative: path)))
            }
            return try DirectoryBuilder.build(entries, options: options, sink: sink)
        case S_IFLNK:
            let target = try FileManager.default.destinationOfSymbolicLink(atPath: url.path)
            return try DirectoryBuilder.symlink(target: target, options: options, sink: sink)
        case S_IFREG:
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            var importer = FileImporter(options: options, sink: sink)
            while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
                try importer.write(data)
                bytesRead += UInt64(data.count)
                progress?(bytesRead)
            }
            let node = try importer.finish()
            onFile?(relative.isEmpty ? url.lastPathComponent : relative, node)
            return node
        default:
            throw ContentError("cannot add \(url.path): only files, folders and symlinks can be added")
        }
    }
}

/// CAR import and export against a store.
public enum CARTransfer {
    /// Writes `root`'s DAG as a CARv1 in `ipfs dag export` order (depth-first pre-order, no
    /// duplicates, no identity blocks).
    public static func export(_ root: CID, from store: FileBlockStore, write: ([UInt8]) throws -> Void) throws {
        try write(CAR.header(roots: [root]))
        try DAGWalker(store: store).walk(root) { cid, block in
            if cid.multihash.code == Multihash.identity { return }
            try write(CAR.section(cid: cid, block: block))
        }
    }

    /// Verifies and stores every block of a CAR; returns its roots.
    public static func importCAR(_ bytes: [UInt8], into store: FileBlockStore) throws -> (roots: [CID], blocks: Int) {
        let archive = try CAR.read(bytes)
        for (cid, block) in archive.blocks { try store.put(cid, block) }
        return (archive.roots, archive.blocks.count)
    }
}
