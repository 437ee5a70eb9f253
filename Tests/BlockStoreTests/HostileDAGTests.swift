import BlockStore
import ContentAddressing
import Foundation
import Testing

/// Hand-made UnixFS DAGs of the kinds a hostile peer or client can store: duplicate names,
/// links out of the tree, sizes that overflow, trees far larger than their blocks.
struct DAGCrafter {
    let store: FileBlockStore

    @discardableResult
    func put(_ node: PBNode) throws -> CID {
        let block = node.encode()
        let cid = CID(v1: CID.dagPB, multihash: Multihash.sha256(block))
        try store.put(cid, block)
        return cid
    }

    func file(_ bytes: [UInt8]) throws -> CID {
        let cid = CID(v1: CID.raw, multihash: Multihash.sha256(bytes))
        try store.put(cid, bytes)
        return cid
    }

    func symlink(_ target: String) throws -> CID {
        try put(PBNode(data: UnixFSData(kind: .symlink, data: Array(target.utf8)).encode()))
    }

    /// A basic directory with the entries exactly as given (no sorting, duplicates kept).
    func directory(_ entries: [(String, CID)]) throws -> CID {
        try put(PBNode(links: entries.map { PBLink(hash: $0.1, name: $0.0, tsize: 0) }, data: UnixFSData(kind: .directory).encode()))
    }
}

@Suite("hostile UnixFS DAGs")
struct HostileDAGTests {
    func setUp() throws -> (DAGCrafter, Exporter, URL, URL) {
        let base = try temporaryDirectory("cod-dag")
        let store = try FileBlockStore(root: base.appendingPathComponent("store"))
        let outside = base.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        return (DAGCrafter(store: store), Exporter(store: store), base.appendingPathComponent("work/out"), outside)
    }

    @Test func duplicateNamesCannotWriteThroughAnEarlierLink() throws {
        let (dag, exporter, destination, outside) = try setUp()
        // "x" first a link to the outside folder, then a folder of the same name with a file.
        let inner = try dag.directory([("pwned", try dag.file(Array("owned".utf8)))])
        let root = try dag.directory([("x", try dag.symlink("../../outside")), ("x", inner)])
        #expect(throws: ContentError.self) { try exporter.extract(root, to: destination) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: destination.path))
    }

    @Test func aRootThatIsASymlinkIsRefused() throws {
        let (dag, exporter, destination, _) = try setUp()
        let root = try dag.symlink("/")
        #expect(throws: ContentError.self) { try exporter.extract(root, to: destination) }
        var info = stat()
        #expect(lstat(destination.path, &info) != 0, "nothing, not even a link, is left at the destination")
    }

    @Test(arguments: ["/", "..", "../../../..", "a/../../.."])
    func linksOutOfTheTreeAreRefused(target: String) throws {
        let (dag, exporter, destination, _) = try setUp()
        let root = try dag.directory([("a", try dag.directory([])), ("escape", try dag.symlink(target))])
        #expect(throws: ContentError.self) { try exporter.extract(root, to: destination) }
        #expect(!FileManager.default.fileExists(atPath: destination.path))
    }

    @Test func linksInsideTheTreeAreKept() throws {
        let (dag, exporter, destination, _) = try setUp()
        let data = try dag.directory([("f.txt", try dag.file(Array("hi".utf8)))])
        let root = try dag.directory([("data", data), ("l", try dag.symlink("data/f.txt"))])
        try exporter.extract(root, to: destination)
        #expect(try String(contentsOf: destination.appendingPathComponent("l"), encoding: .utf8) == "hi")
    }

    @Test(arguments: ["", ".", "..", "a/b", "nul\0byte"])
    func namesThatAreNotPlainAreRefused(name: String) throws {
        let (dag, exporter, destination, _) = try setUp()
        let root = try dag.directory([(name, try dag.file([1]))])
        #expect(throws: ContentError.self) { try exporter.extract(root, to: destination) }
    }

    @Test func blockSizesThatOverflowAreErrorsNotTraps() throws {
        let (dag, exporter, destination, _) = try setUp()
        let leaf = try dag.file([1, 2, 3])
        let node = PBNode(
            links: [PBLink(hash: leaf, name: nil, tsize: 3), PBLink(hash: leaf, name: nil, tsize: 3)],
            data: UnixFSData(kind: .file, fileSize: .max, blockSizes: [.max, .max]).encode())
        let file = try dag.put(node)
        #expect(throws: ContentError.self) { try exporter.read(file) { _ in } }
        #expect(throws: ContentError.self) { try exporter.extract(file, to: destination) }
        #expect(throws: ContentError.self) {
            try CARSelection(store: dag.store).select(root: file, path: "", scope: .entity, bytes: 0..<10)
        }
    }

    @Test func aSmallDAGThatDescribesAHugeTreeStopsAtTheLimits() throws {
        let (dag, exporter, destination, _) = try setUp()
        // One 1 KiB block linked 1,000 times, folders of 100 such files nested 3 deep: 100 MB
        // of output from a few kilobytes of blocks.
        let chunk = try dag.file([UInt8](repeating: 7, count: 1024))
        let big = try dag.put(PBNode(
            links: Array(repeating: PBLink(hash: chunk, name: nil, tsize: 1024), count: 1000),
            data: UnixFSData(kind: .file, fileSize: 1_024_000, blockSizes: Array(repeating: 1024, count: 1000)).encode()))
        var level = try dag.directory((0..<100).map { ("f\($0)", big) })
        for depth in 0..<2 { level = try dag.directory((0..<10).map { ("d\(depth)-\($0)", level) }) }
        let limits = ExportLimits(maxDepth: 256, maxEntries: 1_000_000, maxBytes: 8 << 20)
        #expect(throws: ContentError.self) { try exporter.extract(level, to: destination, limits: limits) }
        #expect(throws: ContentError.self) {
            try exporter.extract(level, to: destination, limits: ExportLimits(maxEntries: 50))
        }
        var deep = try dag.directory([])
        for _ in 0..<40 { deep = try dag.directory([("d", deep)]) }
        #expect(throws: ContentError.self) { try exporter.extract(deep, to: destination, limits: ExportLimits(maxDepth: 20)) }
    }

    @Test func aFileDAGDeeperThanAnyLayoutIsRefused() throws {
        let (dag, exporter, _, _) = try setUp()
        var node = try dag.file([9])
        for _ in 0..<(Exporter.maxFileDepth + 5) {
            node = try dag.put(PBNode(links: [PBLink(hash: node, name: nil, tsize: 1)], data: UnixFSData(kind: .file, fileSize: 1, blockSizes: [1]).encode()))
        }
        #expect(throws: ContentError.self) { try exporter.read(node) { _ in } }
    }
}
