import APIClient
import ArgumentParser
import BlockStore
import ContentAddressing
import Foundation
import Models
import Wire

/// `cod data add DIR --shards K`: imports a folder, splits its files into shards, uploads each
/// shard straight to the compute nodes the orchestrator picks (with replicas), and records the
/// dataset's manifest.
struct DatasetAdder {
    let client: CodClient
    let options: ImportOptions
    let includeHidden: Bool
    let shards: Int
    let replication: Int
    let name: String
    let quiet: Bool
    /// How long to wait for the nodes to announce their shards.
    var announceTimeout: Duration = .seconds(30)

    /// With a name, the folder's files are added to the named dataset as new shards, making its
    /// next version (the first when there is none).
    var appendTo: String?

    func add(_ url: URL) async throws -> DatasetInfo {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CLIFailure("a dataset is a folder of files; \(url.path) is not a folder")
        }
        let scratch = try DataCommand.Scratch()
        let total = DataCommand.Add.totalSize(url)
        let progress = ProgressLine(total: total, enabled: !quiet && total >= 16 << 20)
        var files: [(path: String, node: ImportedNode)] = []
        var importer = DiskImporter(options: options, includeHidden: includeHidden, progress: { progress.update($0) }, sink: scratch.store.put)
        importer.onFile = { files.append(($0, $1)) }
        let root: ImportedNode
        do {
            root = try importer.add(url)
        } catch let error as ContentError {
            throw CLIFailure("cannot add \(url.path): \(error)")
        }
        progress.finish()
        guard !files.isEmpty else { throw CLIFailure("\(url.path) holds no files to shard") }
        var head: DatasetInfo?
        if let appendTo {
            head = try await client.namedDataset(appendTo)
            if let head { try Self.check(files.map(\.path), canJoin: head, named: appendTo) }
        }
        if shards > files.count, !quiet {
            FileHandle.standardError.write(Data("note: \(files.count) files make at most \(files.count) shards\n".utf8))
        }
        let nodesByPath = Dictionary(files.map { ($0.path, $0.node) }, uniquingKeysWith: { first, _ in first })
        let groups = ShardPlanner.splitBySize(
            files.map { DatasetFile(path: $0.path, cid: $0.node.cid.description, size: $0.node.size, tsize: $0.node.tsize) }, into: shards)

        let placement = try await client.datasetPlacement(shards: groups.count, replication: replication)
        var newShards: [DatasetShard] = []
        let holder = PinHolder.dataset(root.cid.toV1.description)
        for (index, group) in groups.enumerated() {
            // A shard is a directory of its own with the dataset's paths, so it is pinned,
            // announced and fetched whole like any other DAG.
            let shardRoot = try Self.tree(group.map { ($0.path, nodesByPath[$0.path]!) }, options: options, sink: scratch.store.put)
            let car = scratch.directory.appendingPathComponent("shard-\(index).car")
            _ = FileManager.default.createFile(atPath: car.path, contents: nil)
            let handle = try FileHandle(forWritingTo: car)
            try CARTransfer.export(shardRoot.cid, from: scratch.store) { try handle.write(contentsOf: Data($0)) }
            try handle.close()
            var placed: [String] = []
            var failures: [String] = []
            for candidate in placement.candidates[index] where placed.count < replication {
                do {
                    // Straight to the node's own API, not through the orchestrator, with a
                    // grant for this shard on this node: the user's key never leaves for a node.
                    let grant = try await client.uploadGrant(
                        nodeID: candidate.nodeID, root: shardRoot.cid.description, holder: holder, bytes: Self.size(of: car))
                    let response = try await CodClient(baseURL: candidate.address).presenting(grant)
                        .uploadCAR(car, pin: true, holder: holder, timeout: .hours(1))
                    guard response.roots.first == shardRoot.cid.description else {
                        throw CLIFailure("it stored \(response.roots) instead of \(shardRoot.cid)")
                    }
                    placed.append(candidate.nodeID)
                } catch {
                    failures.append("node \(shortID(candidate.nodeID)) at \(candidate.address): \(error)")
                }
            }
            try? FileManager.default.removeItem(at: car)
            if placed.isEmpty {
                throw CLIFailure("shard \(index) could not be placed on any node:\n  " + failures.joined(separator: "\n  "))
            }
            if placed.count < replication, !quiet {
                FileHandle.standardError.write(Data(
                    "warning: shard \(index) has \(placed.count) of \(replication) replicas:\n  \(failures.joined(separator: "\n  "))\n".utf8))
            }
            newShards.append(DatasetShard(
                index: index, cid: shardRoot.cid.toV1.description, bytes: group.reduce(0) { $0 + $1.size }, files: group, nodes: placed))
        }
        var info: DatasetInfo
        if let appendTo {
            info = try await append(newShards, to: appendTo, head: head, scratch: scratch)
        } else {
            let manifest = DatasetManifest(
                cid: root.cid.description, name: name.isEmpty ? url.lastPathComponent : name, bytes: newShards.reduce(0) { $0 + $1.bytes },
                replication: replication, shards: newShards)
            info = try await client.saveDataset(manifest)
        }
        // Nodes announce what they hold with their heartbeats: wait until every new shard is
        // seen, so a job submitted next finds its data.
        let added = (info.dataset.shards.count - newShards.count)..<info.dataset.shards.count
        let clock = ContinuousClock()
        let deadline = clock.now + announceTimeout
        while info.holders[added].contains(where: \.isEmpty), clock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
            let version = info.version
            info = try await client.dataset(info.dataset.cid)
            info.version = version
        }
        if info.holders[added].contains(where: \.isEmpty), !quiet {
            FileHandle.standardError.write(Data("warning: not every shard has been announced by its nodes yet (cod data where \(info.dataset.cid))\n".utf8))
        }
        return info
    }

    /// Stores the next version of dataset `name`: its shards so far, then `newShards`, under
    /// the root of all their files. When another add lands first, the version is made again on
    /// top of that one (the shards are placed already; only the root and manifest change).
    func append(_ newShards: [DatasetShard], to name: String, head first: DatasetInfo?, scratch: DataCommand.Scratch) async throws -> DatasetInfo {
        var head = first
        var attempt = 0
        while true {
            attempt += 1
            let kept = head?.dataset.shards ?? []
            var shards = kept
            for (offset, shard) in newShards.enumerated() {
                var shard = shard
                shard.index = kept.count + offset
                shards.append(shard)
            }
            var entries: [(path: String, node: ImportedNode)] = []
            for file in shards.flatMap(\.files) {
                guard let tsize = file.tsize, let cid = try? CID(file.cid) else {
                    throw CLIFailure(
                        "dataset \(name) lists \(file.path) without the size of its DAG, so a new version's root cannot be built; add the folder under a new dataset name")
                }
                entries.append((file.path, ImportedNode(cid: cid, size: file.size, tsize: tsize)))
            }
            let root = try Self.tree(entries, options: options, sink: scratch.store.put)
            let manifest = DatasetManifest(
                cid: root.cid.description, name: name, bytes: shards.reduce(0) { $0 + $1.bytes }, replication: replication, shards: shards)
            do {
                return try await client.saveDataset(manifest, after: head?.version ?? 0)
            } catch let error as CodError where error.code == .conflict && attempt < 20 {
                // Another add landed first: build on top of it.
                head = try await client.namedDataset(name)
                if let head { try Self.check(newShards.flatMap(\.files).map(\.path), canJoin: head, named: name) }
            }
        }
    }

    /// Refuses files whose paths the dataset already has: a dataset only grows.
    static func check(_ paths: [String], canJoin head: DatasetInfo, named name: String) throws {
        let existing = Set(head.dataset.shards.flatMap(\.files).map(\.path))
        let clashes = paths.filter(existing.contains).sorted()
        guard clashes.isEmpty else {
            throw CLIFailure(
                "dataset \(name) (version \(head.version ?? 0)) already has \(clashes.prefix(5).joined(separator: ", "))\(clashes.count > 5 ? " and \(clashes.count - 5) more" : ""): a dataset only grows, so rename them or use another dataset")
        }
    }

    static func size(of file: URL) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: file.path)[.size]) as? NSNumber)?.intValue ?? 0
    }

    /// A UnixFS directory tree holding `files` at their relative paths.
    static func tree(_ files: [(path: String, node: ImportedNode)], options: ImportOptions, sink: BlockSink) throws -> ImportedNode {
        var direct: [DirectoryEntry] = []
        var nested: [String: [(path: String, node: ImportedNode)]] = [:]
        for file in files {
            if let slash = file.path.firstIndex(of: "/") {
                nested[String(file.path[..<slash]), default: []].append((String(file.path[file.path.index(after: slash)...]), file.node))
            } else {
                direct.append(DirectoryEntry(name: file.path, node: file.node))
            }
        }
        for (name, children) in nested {
            direct.append(DirectoryEntry(name: name, node: try tree(children, options: options, sink: sink)))
        }
        return try DirectoryBuilder.build(direct, options: options, sink: sink)
    }

    static func printSummary(_ info: DatasetInfo) {
        let dataset = info.dataset
        let version = info.version.map { " version \($0)" } ?? ""
        print("added dataset \(dataset.cid) \(dataset.name)\(version) (\(ResourceParsing.formatBytes(dataset.bytes)), \(dataset.fileCount) files, \(dataset.shards.count) shards, replication \(dataset.replication))")
        print(shardTable(info))
    }

    static func shardTable(_ info: DatasetInfo) -> String {
        let rows = info.dataset.shards.map { shard in
            [
                String(shard.index), shard.cid, String(shard.files.count), ResourceParsing.formatBytes(shard.bytes),
                info.holders.indices.contains(shard.index) && !info.holders[shard.index].isEmpty
                    ? info.holders[shard.index].map(shortID).joined(separator: ",") : "none",
            ]
        }
        return Output.table(["SHARD", "CID", "FILES", "SIZE", "HELD BY"], rows)
    }
}

extension DataCommand {
    struct Datasets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List datasets: their root CIDs, shards, and how many nodes hold each shard now.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let items = try await global.client().datasets()
            try global.print(items) {
                guard !items.isEmpty else {
                    print("No datasets. Add one with: cod data add DIR --shards K [--replication R]")
                    return
                }
                let rows = items.map { info in
                    let held = info.holders.map(\.count)
                    let fewest = held.min() ?? 0
                    return [
                        info.dataset.cid, info.dataset.name, String(info.dataset.shards.count), String(info.dataset.fileCount),
                        ResourceParsing.formatBytes(info.dataset.bytes), String(info.dataset.replication),
                        fewest == 0 ? "\(held.filter { $0 == 0 }.count) shards held by no node" : "every shard on \(fewest)+ nodes",
                    ]
                }
                print(Output.table(["CID", "NAME", "SHARDS", "FILES", "SIZE", "REPLICATION", "AVAILABILITY"], rows))
            }
        }
    }
}
