public import ContentAddressing
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
    /// Writers that add and then pin hold it shared; garbage collection holds it alone, so it
    /// never deletes blocks that are about to be pinned.
    private let gcLock = ReadWriteLock()
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
        guard fd >= 0 else { throw ContentError("cannot write block \(cid) under \(blocks.path): \(String(cString: strerror(errno)))") }
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
            throw ContentError("cannot write block \(cid): \(String(cString: strerror(failure)))")
        }
        if rename(temporary, file.path) != 0 {
            let error = errno
            unlink(temporary)
            throw ContentError("cannot store block \(cid): \(String(cString: strerror(error)))")
        }
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
            throw ContentError("block \(cid) is corrupt on disk (its bytes no longer match the CID); it was moved to \(quarantine.path)")
        }
        return bytes
    }

    /// Reads a block that must be present.
    public func require(_ cid: CID) throws -> [UInt8] {
        guard let bytes = try get(cid) else { throw ContentError("block \(cid) is not in this node's store") }
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

    /// Pins a DAG recursively; every block must be present.
    public func pin(_ cid: CID) throws {
        try guardingFromGC { try pinUnguarded(cid) }
    }

    /// ``pin(_:)`` for use inside ``guardingFromGC(_:)``.
    public func pinUnguarded(_ cid: CID) throws {
        _ = try DAGWalker(store: self).walk(cid) { _, _ in }
        guard FileManager.default.createFile(atPath: pinFile(cid).path, contents: Data(cid.description.utf8)) else {
            throw ContentError("cannot record the pin of \(cid)")
        }
    }

    public func unpin(_ cid: CID) throws {
        guard FileManager.default.fileExists(atPath: pinFile(cid).path) else { throw ContentError("\(cid) is not pinned") }
        try FileManager.default.removeItem(at: pinFile(cid))
    }

    public func pinned() throws -> [CID] {
        try FileManager.default.contentsOfDirectory(atPath: pins.path).compactMap {
            (try? String(contentsOf: pins.appendingPathComponent($0), encoding: .utf8)).flatMap { try? CID($0) }
        }.sorted()
    }

    public func isPinned(_ cid: CID) -> Bool {
        FileManager.default.fileExists(atPath: pinFile(cid).path)
    }

    /// Deletes every block not reachable from a pin (or from `keep`). Returns what was freed.
    public func garbageCollect(keep: [CID] = []) throws -> (blocks: Int, bytes: UInt64) {
        gcLock.lockExclusive()
        defer { gcLock.unlock() }
        var live = Set<String>()
        for root in try pinned() + keep {
            _ = try? DAGWalker(store: self).walk(root) { cid, _ in
                live.insert(Multibase.base32.encode(cid.multihash.bytes))
            }
        }
        var freed = 0
        var bytes: UInt64 = 0
        for shard in try FileManager.default.contentsOfDirectory(atPath: blocks.path) {
            let folder = blocks.appendingPathComponent(shard)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] where !live.contains(name) {
                let file = folder.appendingPathComponent(name)
                let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.uint64Value ?? 0
                if (try? FileManager.default.removeItem(at: file)) != nil {
                    freed += 1
                    bytes += size
                }
            }
        }
        return (freed, bytes)
    }
}

/// Walks a DAG depth-first in pre-order, following links in their stored order, visiting each
/// block once: the order of `ipfs dag export`.
public struct DAGWalker {
    let store: FileBlockStore

    public init(store: FileBlockStore) {
        self.store = store
    }

    /// Calls `visit` for every block; returns how many were visited. Missing blocks are errors.
    @discardableResult
    public func walk(_ root: CID, visit: (CID, [UInt8]) throws -> Void) throws -> Int {
        var seen = Set<[UInt8]>()
        var stack = [root]
        var count = 0
        while let cid = stack.popLast() {
            guard seen.insert(cid.multihash.bytes).inserted else { continue }
            let block = try store.require(cid)
            try visit(cid, block)
            count += 1
            switch cid.codec {
            case CID.dagPB:
                let node = try PBNode.decode(block)
                for link in node.links.reversed() { stack.append(link.hash) }
            case CID.raw:
                break
            default:
                throw ContentError("cannot follow links of \(cid): codec \(cid.codecName) is not supported (dag-pb and raw are)")
            }
        }
        return count
    }
}

/// The set of shard folders already created (256 at most), shared across threads.
final class ShardCache: @unchecked Sendable {
    private let lock = NSLock()
    private var known = Set<String>()

    func contains(_ name: String) -> Bool { lock.withLock { known.contains(name) } }
    func insert(_ name: String) { lock.withLock { _ = known.insert(name) } }
}

/// A POSIX reader-writer lock. Each lock and its unlock must happen on the same thread, so it
/// only guards synchronous regions.
final class ReadWriteLock: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    init() {
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func lockShared() { pthread_rwlock_rdlock(lock) }
    func lockExclusive() { pthread_rwlock_wrlock(lock) }
    func unlock() { pthread_rwlock_unlock(lock) }
}
