public import ContentAddressing
import CSystemShims
import Foundation

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

/// Paths written but not yet flushed, shared across threads. Past `limit` it stops counting
/// and the next flush covers the whole file system.
final class UnsyncedFiles: @unchecked Sendable {
    static let limit = 100_000
    private let lock = NSLock()
    private var paths = Set<String>()
    private var overflowed = false

    func insert(_ path: String) {
        lock.withLock {
            guard !overflowed else { return }
            paths.insert(path)
            if paths.count > Self.limit {
                overflowed = true
                paths.removeAll()
            }
        }
    }

    /// What to flush, and forget it; nil when too much was written to list.
    func takeAll() -> Set<String>? {
        lock.withLock {
            defer {
                paths.removeAll(keepingCapacity: true)
                overflowed = false
            }
            return overflowed ? nil : paths
        }
    }
}

/// `fsync` of one file or folder by path. A path that no longer exists (a block collected
/// since) needs no flush.
public enum FileSync {
    public static func flush(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return }
            throw ContentError("cannot open \(path) to flush it: \(String(cString: strerror(errno)))", code: .storage)
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw ContentError("cannot flush \(path) to disk: \(String(cString: strerror(errno)))", code: .storage) }
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

/// Who a pin is for: a user (`cod data add`, `data pin`), a job's result, or a dataset's shard.
public enum PinHolder {
    /// The one user holder of a store without users (a compute node's own, or pins made before
    /// the orchestrator had users).
    public static let user = "user"

    /// The holder for pins of the user `name`.
    public static func user(named name: String) -> String { "user:" + name }

    /// The holder for the result of an execution.
    public static func result(of executionID: String) -> String { "result:" + executionID }

    /// The holder for a shard of the dataset with root `cid`.
    public static func dataset(_ cid: String) -> String { "dataset:" + cid }

    /// The holder for every receipt a node signed (its chain).
    public static func receipts(of nodeID: String) -> String { "receipts:" + nodeID }

    /// Whether `holder` is a well-formed holder name (user, result:ID or dataset:CID, with a
    /// plain ID or CID).
    public static func isValid(_ holder: String) -> Bool {
        if holder == user { return true }
        guard let prefix = ["result:", "dataset:", "user:", "receipts:"].first(where: { holder.hasPrefix($0) }) else { return false }
        let id = holder.dropFirst(prefix.count)
        return !id.isEmpty && id.count <= 128 && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }

    public static func describe(_ holder: String) -> String {
        if holder == user { return "you (a user pin)" }
        if holder.hasPrefix("result:") { return "the result of execution \(holder.dropFirst(7))" }
        if holder.hasPrefix("dataset:") { return "the dataset \(holder.dropFirst(8))" }
        if holder.hasPrefix("user:") { return "the user \(holder.dropFirst(5))" }
        if holder.hasPrefix("receipts:") { return "the receipts of node \(holder.dropFirst(9))" }
        return holder
    }
}
