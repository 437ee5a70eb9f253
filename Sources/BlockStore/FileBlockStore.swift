public import ContentAddressing
import CSystemShims
import Foundation

/// A node's blocks on disk: one file per block, named by its multihash (so the CIDv0 and CIDv1
/// of the same bytes share a file), in folders sharded by two characters of the name. Writes
/// go to a temporary file and are renamed into place, so a crash never leaves half a block.
/// Every read is checked against the hash: a corrupt block is reported, moved aside, and never
/// served. Recursive pins keep DAGs from garbage collection.
public final class FileBlockStore: Sendable {
    public let root: URL
    let blocks: URL
    let pins: URL
    let quarantine: URL
    /// Shard folders known to exist, so a put does not ask the file system each time.
    private let shardCache = ShardCache()
    /// Block files renamed into place since the last flush; a pin flushes exactly these.
    private let unsynced = UnsyncedFiles()
    /// One flush at a time: a pin whose blocks another flush took must wait until they are on
    /// disk before it returns.
    private let syncLock = NSLock()
    /// Writers that add and then pin hold it shared; garbage collection holds it alone, so it
    /// never deletes blocks that are about to be pinned.
    private let gcLock = ReadWriteLock()
    /// Serialises changes to pin files (read, add or remove a holder, write).
    private let pinLock = NSLock()
    private var shards: ShardCache { shardCache }

    public init(root: URL) throws {
        self.root = root
        blocks = root.appendingPathComponent("blocks")
        pins = root.appendingPathComponent("pins")
        quarantine = root.appendingPathComponent("corrupt")
        for folder in [blocks, pins, quarantine] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
    }

    /// The file of a block: `blocks/<2 chars>/<base32 multihash>`.
    func path(_ cid: CID) -> URL {
        let key = Multibase.base32.encode(cid.multihash.bytes)
        let shard = String(key.dropLast().suffix(2))
        return blocks.appendingPathComponent(shard).appendingPathComponent(key)
    }

    public func has(_ cid: CID) -> Bool {
        if cid.multihash.code == Multihash.identity { return true }
        return FileManager.default.fileExists(atPath: path(cid).path)
    }

    /// Stores a block after checking it matches its CID.
    public func put(_ cid: CID, _ bytes: [UInt8]) throws {
        if cid.multihash.code == Multihash.identity { return }
        guard try cid.multihash.verify(bytes) else {
            throw ContentError("block does not match its CID \(cid); refusing to store it")
        }
        let file = path(cid)
        if access(file.path, F_OK) == 0 { return }
        let folder = file.deletingLastPathComponent()
        if !shards.contains(folder.lastPathComponent) {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            shards.insert(folder.lastPathComponent)
        }
        // Write a temporary file, then rename it into place: readers see all or nothing.
        let temporary = folder.path + "/.tmp-" + UUID().uuidString
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw ContentError("cannot write block \(cid) under \(blocks.path): \(String(cString: strerror(errno)))", code: .storage) }
        var written = 0
        let failure: Int32? = bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let result = write(fd, buffer.baseAddress! + written, buffer.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += result
            }
            return nil
        }
        close(fd)
        if let failure {
            unlink(temporary)
            throw ContentError("cannot write block \(cid): \(String(cString: strerror(failure)))", code: .storage)
        }
        if rename(temporary, file.path) != 0 {
            let error = errno
            unlink(temporary)
            throw ContentError("cannot store block \(cid): \(String(cString: strerror(error)))", code: .storage)
        }
        unsynced.insert(file.path)
    }

    /// Reads a block, verifying it. Nil when the store does not have it.
    public func get(_ cid: CID) throws -> [UInt8]? {
        if cid.multihash.code == Multihash.identity { return cid.multihash.digest }
        let file = path(cid)
        guard let data = FileManager.default.contents(atPath: file.path) else { return nil }
        let bytes = Array(data)
        guard try cid.multihash.verify(bytes) else {
            // Never serve it; keep it aside for inspection and let a fresh copy be fetched.
            try? FileManager.default.moveItem(
                at: file, to: quarantine.appendingPathComponent(file.lastPathComponent + "-\(UUID().uuidString.prefix(8))"))
            throw ContentError("block \(cid) is corrupt on disk (its bytes no longer match the CID); it was moved to \(quarantine.path)", code: .corrupt)
        }
        return bytes
    }

    /// Reads a block that must be present.
    public func require(_ cid: CID) throws -> [UInt8] {
        guard let bytes = try get(cid) else { throw ContentError("block \(cid) is not in this node's store", code: .missingBlock) }
        return bytes
    }

    public func delete(_ cid: CID) {
        try? FileManager.default.removeItem(at: path(cid))
    }

    /// Every stored block's multihash key, and the total bytes.
    public func stat() throws -> (blocks: Int, bytes: UInt64) {
        var count = 0
        var total: UInt64 = 0
        for shard in try FileManager.default.contentsOfDirectory(atPath: blocks.path) {
            let folder = blocks.appendingPathComponent(shard)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] where !name.hasPrefix(".tmp-") {
                count += 1
                let size = (try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(name).path)[.size] as? NSNumber)
                total += size?.uint64Value ?? 0
            }
        }
        return (count, total)
    }

    // MARK: Pins

    func pinFile(_ cid: CID) -> URL { pins.appendingPathComponent(cid.toV1.description) }

    /// Runs `body` (which adds blocks and pins them) so that no garbage collection runs in
    /// between. Inside, pin with ``pinUnguarded(_:)``.
    public func guardingFromGC<T>(_ body: () throws -> T) rethrows -> T {
        gcLock.lockShared()
        defer { gcLock.unlock() }
        return try body()
    }

    /// Pins a DAG recursively for `holder`; every block must be present. A DAG stays pinned
    /// while any holder keeps its pin.
    public func pin(_ cid: CID, holder: String = PinHolder.user) throws {
        try guardingFromGC { try pinUnguarded(cid, holder: holder) }
    }

    /// ``pin(_:holder:)`` for use inside ``guardingFromGC(_:)``.
    ///
    /// A pin is a folder named by the CIDv1 holding one empty file per holder (and `.cid`, the
    /// CID as it was given), so adding or dropping a holder costs the same however many others
    /// share the DAG (thousands of jobs can produce the same result).
    public func pinUnguarded(_ cid: CID, holder: String = PinHolder.user) throws {
        guard PinHolder.isValid(holder) else { throw ContentError("invalid pin holder \(holder)") }
        _ = try DAGWalker(store: self).walk(cid) { _, _ in }
        try pinLock.withLock {
            let folder = try pinFolder(cid)
            let entry = folder.appendingPathComponent(holder)
            guard FileManager.default.createFile(atPath: entry.path, contents: nil) else {
                throw ContentError("cannot record the pin of \(cid)")
            }
        }
        // A pin is what a caller is told is kept: its blocks and the pin itself reach the disk
        // before it returns (blocks are written without a sync each, so one flush covers all).
        try sync(also: [pinFile(cid).appendingPathComponent(holder).path, pinFile(cid).path, pins.path])
    }

    /// Flushes to disk every block written since the last flush, their folders, and `also`
    /// (files or folders): all of it survives a power loss once this returns. Only what this
    /// store wrote is flushed, not the whole file system (a node laying out a gigabyte of
    /// inputs would otherwise pay for it at every pin); past `UnsyncedFiles.limit` pending
    /// files the file system is flushed at once instead.
    public func sync(also extra: [String] = []) throws {
        try syncLock.withLock { try flushPending(also: extra) }
    }

    private func flushPending(also extra: [String]) throws {
        guard let files = unsynced.takeAll() else {
            guard cod_sync_filesystem(root.path) == 0 else {
                throw ContentError("cannot flush the block store at \(root.path) to disk: \(String(cString: strerror(errno)))", code: .storage)
            }
            return
        }
        var folders = Set<String>()
        for path in files {
            try FileSync.flush(path)
            folders.insert(String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]))
        }
        if !files.isEmpty { folders.insert(blocks.path) }
        for path in extra + folders.sorted() { try FileSync.flush(path) }
    }

    /// Drops `holder`'s pin; the DAG stays pinned while anyone else holds it.
    public func unpin(_ cid: CID, holder: String = PinHolder.user) throws {
        try unpin(cid, holders: [holder])
    }

    /// Drops several holders' pins at once (all must hold it).
    public func unpin(_ cid: CID, holders: [String]) throws {
        try pinLock.withLock {
            let current = pinHolders(cid)
            if current.isEmpty { throw ContentError("\(cid) is not pinned", code: .notPinned) }
            if let missing = holders.first(where: { !current.contains($0) }) {
                let others = current.prefix(3).map(PinHolder.describe).joined(separator: ", ")
                throw ContentError(
                    "\(cid) is not pinned by \(PinHolder.describe(missing)); it is held by \(others)\(current.count > 3 ? " and \(current.count - 3) more" : "")")
            }
            let folder = try pinFolder(cid)
            for holder in holders { try? FileManager.default.removeItem(at: folder.appendingPathComponent(holder)) }
            if pinHolders(cid).isEmpty { try FileManager.default.removeItem(at: folder) }
        }
    }

    /// Who holds a pin on `cid` (empty when nobody does), sorted.
    public func pinHolders(_ cid: CID) -> [String] {
        let path = pinFile(cid).path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [] }
        // A pin recorded as a plain file, before holders existed, belongs to the user.
        guard isDirectory.boolValue else { return [PinHolder.user] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0 != ".cid" }.sorted()
    }

    /// The pin folder of `cid`, created (or converted from an older pin file) if needed.
    private func pinFolder(_ cid: CID) throws -> URL {
        let folder = pinFile(cid)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { return folder }
            try FileManager.default.removeItem(at: folder)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
            _ = FileManager.default.createFile(atPath: folder.appendingPathComponent(PinHolder.user).path, contents: nil)
        } else {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
        }
        try Data(cid.description.utf8).write(to: folder.appendingPathComponent(".cid"), options: .atomic)
        return folder
    }

    public func pinned() throws -> [CID] {
        try FileManager.default.contentsOfDirectory(atPath: pins.path).compactMap { name in
            let entry = pins.appendingPathComponent(name)
            // The CID as given (a folder's `.cid`, an older pin file's content), else the name.
            let text = (try? String(contentsOf: entry.appendingPathComponent(".cid"), encoding: .utf8))
                ?? (try? String(contentsOf: entry, encoding: .utf8))
                ?? name
            return try? CID(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }.sorted()
    }

    public func isPinned(_ cid: CID) -> Bool {
        FileManager.default.fileExists(atPath: pinFile(cid).path)
    }

    /// Deletes every block not reachable from a pin (or from `keep`). Returns what was freed.
    public func garbageCollect(keep: [CID] = []) throws -> (blocks: Int, bytes: UInt64) {
        gcLock.lockExclusive()
        defer { gcLock.unlock() }
        let live = try reachable(from: try pinned() + keep)
        var freed = 0
        var bytes: UInt64 = 0
        for shard in try FileManager.default.contentsOfDirectory(atPath: blocks.path) {
            let folder = blocks.appendingPathComponent(shard)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] where !live.contains(name) {
                if let size = removeBlockFile(folder.appendingPathComponent(name)) {
                    freed += 1
                    bytes += size
                }
            }
        }
        return (freed, bytes)
    }

    /// Deletes the blocks of the DAGs under `roots` that no pin still reaches: what a released
    /// pin held, without touching anything else in the store. Returns what was freed.
    public func release(_ roots: [CID]) throws -> (blocks: Int, bytes: UInt64) {
        guard !roots.isEmpty else { return (0, 0) }
        gcLock.lockExclusive()
        defer { gcLock.unlock() }
        let candidates = try reachable(from: roots)
        let live = try reachable(from: try pinned())
        var freed = 0
        var bytes: UInt64 = 0
        for name in candidates.subtracting(live) {
            let file = blocks.appendingPathComponent(String(name.dropLast().suffix(2))).appendingPathComponent(name)
            if let size = removeBlockFile(file) {
                freed += 1
                bytes += size
            }
        }
        return (freed, bytes)
    }

    /// The file names (base32 multihashes) of every block reachable from `roots`. Only blocks
    /// that can have links (dag-pb) are read: raw leaves, most of a large file's bytes, are
    /// named by their CIDs alone, so marking a pinned dataset costs its tree, not its data.
    /// Parts of a DAG that are missing are skipped.
    private func reachable(from roots: [CID]) throws -> Set<String> {
        var found = Set<String>()
        var stack = roots
        while let cid = stack.popLast() {
            guard cid.multihash.code != Multihash.identity,
                found.insert(Multibase.base32.encode(cid.multihash.bytes)).inserted, cid.codec == CID.dagPB,
                let block = try? get(cid), let node = try? PBNode.decode(block)
            else { continue }
            stack += node.links.map(\.hash)
        }
        return found
    }

    /// Removes a block file; its size when it was removed.
    private func removeBlockFile(_ file: URL) -> UInt64? {
        let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.uint64Value ?? 0
        return (try? FileManager.default.removeItem(at: file)) != nil ? size : nil
    }
}
