import APIClient
import ArgumentParser
import BlockStore
import ContentAddressing
import Foundation
import Models
import Wire

struct DataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Add, fetch and manage content-addressed data (IPFS-compatible).",
        subcommands: [Add.self, Get.self, Cat.self, Ls.self, Export.self, Import.self, Pin.self, Unpin.self, GC.self, Stat.self, Where.self, Datasets.self])

    /// A scratch block store, deleted on exit.
    final class Scratch {
        let directory: URL
        let store: FileBlockStore

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("cod-data-\(UUID().uuidString)")
            store = try FileBlockStore(root: directory)
        }

        deinit { try? FileManager.default.removeItem(at: directory) }
    }

    /// Fetches `cidPath` as a CAR and stores every block after verifying it. Returns the
    /// target's CID (the CAR's root may be the path's start; the target is the last header root).
    static func fetchVerified(_ cidPath: String, client: CodClient, into scratch: Scratch) async throws -> CID {
        let car = scratch.directory.appendingPathComponent("download.car")
        try await client.downloadCAR(cidPath, to: car)
        do {
            let (roots, _) = try CARStream.importFile(car, into: scratch.store)
            try? FileManager.default.removeItem(at: car)
            guard let root = roots.first else { throw CLIFailure("the node sent a CAR without a root") }
            let path = cidPath.split(separator: "/").dropFirst().joined(separator: "/")
            return try Exporter(store: scratch.store).resolve(root, path: path)
        } catch let error as ContentError {
            throw CLIFailure("the data failed verification: \(error)")
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a file or folder; prints its CID (the same CID kubo's ipfs add gives).")
        @Argument(help: "File or folder to add.") var path: String
        @Option(name: .customLong("cid-version"), help: "0 (kubo's default) or 1.") var cidVersion = 0
        @Option(name: .customLong("raw-leaves"), help: "Store leaves as raw blocks (default: true with CIDv1).") var rawLeaves: Bool?
        @Option(help: "Chunker, size-N (default size-262144).") var chunker = "size-262144"
        @Option(help: "Import profile: unixfs-v1-2025 or unixfs-v0-2015.") var profile: String?
        @Flag(name: [.customShort("H"), .customLong("hidden")], help: "Include files whose names start with a dot.") var hidden = false
        @Flag(help: "Pin the data on the node so garbage collection keeps it.") var pin = false
        @Flag(name: [.short, .long], help: "Print only the CID.") var quiet = false
        @Flag(name: [.customShort("n"), .customLong("only-hash")], help: "Compute the CID without sending anything to a node.") var onlyHash = false
        @Option(name: .customLong("car"), help: "Also write the DAG as a CAR to this file.") var carOutput: String?
        @Option(help: "Add the folder as a dataset of K shards (files grouped by size), each placed on compute nodes.") var shards: Int?
        @Option(name: .customLong("shard-across"), help: "Add the folder as a dataset with one shard per node over N nodes.") var shardAcross: Int?
        @Option(help: "With --shards: how many nodes hold each shard.") var replication = 1
        @Option(help: "With --shards: the dataset's name (default: the folder's name).") var name = ""
        @Option(help: ArgumentHelp(
            "Add the folder's files to the named dataset NAME as new shards (--shards K, default 1), making its next version.",
            discussion: "The first add makes the dataset. Schedules with a Dataset trigger start a job when it grows."))
        var dataset: String?
        @OptionGroup var global: APIOptions

        func validate() throws {
            if shards != nil && shardAcross != nil { throw ValidationError("give --shards or --shard-across, not both") }
            if let count = shards ?? shardAcross, !(1...100_000).contains(count) {
                throw ValidationError("--shards and --shard-across take 1 to 100000")
            }
            if dataset != nil && !name.isEmpty { throw ValidationError("--dataset names the dataset; leave out --name") }
            if shards == nil && shardAcross == nil && dataset == nil && (replication != 1 || !name.isEmpty) {
                throw ValidationError("--replication and --name apply to datasets: add --shards K")
            }
            if replication < 1 { throw ValidationError("--replication must be at least 1") }
            if (shards != nil || shardAcross != nil || dataset != nil) && (onlyHash || carOutput != nil || pin) {
                throw ValidationError("--only-hash, --car and --pin do not apply to datasets (their shards are pinned on the nodes)")
            }
        }

        func run() async throws {
            guard [0, 1].contains(cidVersion) else { throw ValidationError("--cid-version must be 0 or 1") }
            guard chunker.hasPrefix("size-"), let size = Int(chunker.dropFirst(5)), size > 0, size <= 1 << 20 else {
                throw ValidationError("--chunker must be size-N with N between 1 and 1048576")
            }
            var options = ImportOptions(cidVersion: cidVersion, rawLeaves: rawLeaves, chunkSize: size)
            switch profile {
            case nil: break
            case "unixfs-v1-2025"?: options = .unixfsV1_2025
            case "unixfs-v0-2015"?, "legacy-cid-v0"?: options = .kuboDefault
            case let other?: throw ValidationError("unknown profile \(other); use unixfs-v1-2025 or unixfs-v0-2015")
            }
            let url = URL(fileURLWithPath: path)
            guard FileManager.default.fileExists(atPath: url.path) else { throw CLIFailure("cannot add \(path): no such file or folder") }
            if let count = shards ?? shardAcross ?? (dataset != nil ? 1 : nil) {
                var adder = DatasetAdder(
                    client: global.client(), options: options, includeHidden: hidden, shards: count, replication: replication,
                    name: name, quiet: quiet)
                adder.appendTo = dataset
                let info = try await adder.add(url)
                if quiet { print(info.dataset.cid) } else { DatasetAdder.printSummary(info) }
                return
            }
            let total = Self.totalSize(url)
            let scratch = try Scratch()
            let progress = ProgressLine(total: total, enabled: !quiet && total >= 16 << 20)
            var importer = DiskImporter(options: options, includeHidden: hidden, progress: { progress.update($0) }, sink: scratch.store.put)
            let root: ImportedNode
            do {
                root = try importer.add(url)
            } catch let error as ContentError {
                throw CLIFailure("cannot add \(path): \(error)")
            }
            progress.finish()
            let car = carOutput.map { URL(fileURLWithPath: $0) } ?? scratch.directory.appendingPathComponent("upload.car")
            if carOutput != nil || !onlyHash {
                _ = FileManager.default.createFile(atPath: car.path, contents: nil)
                let handle = try FileHandle(forWritingTo: car)
                try CARTransfer.export(root.cid, from: scratch.store) { try handle.write(contentsOf: Data($0)) }
                try handle.close()
            }
            if onlyHash {
                print(quiet ? root.cid.description : "\(root.cid) \(url.lastPathComponent)")
                return
            }
            let response = try await global.client().uploadCAR(car, pin: pin)
            guard response.roots.first == root.cid.description else {
                throw CLIFailure("the node stored \(response.roots) instead of \(root.cid)")
            }
            if quiet {
                print(root.cid)
            } else {
                print("added \(root.cid) \(url.lastPathComponent) (\(ResourceParsing.formatBytes(root.size)), \(response.blocks) blocks\(pin ? ", pinned" : ""))")
            }
        }

        static func totalSize(_ url: URL) -> UInt64 {
            guard let enumerator = FileManager.default.enumerator(atPath: url.path) else {
                return (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.uint64Value ?? 0
            }
            var total: UInt64 = 0
            while let item = enumerator.nextObject() as? String {
                total += (enumerator.fileAttributes?[.size] as? NSNumber)?.uint64Value ?? 0
                _ = item
            }
            return total == 0 ? (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.uint64Value ?? 0 : total
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Download CID[/path], verifying every block.")
        @Argument(help: "CID, optionally followed by /path.") var cid: String
        @Option(name: [.short, .customLong("output")], help: "Where to write (default: the CID).") var output: String?
        @OptionGroup var global: APIOptions

        func run() async throws {
            let scratch = try Scratch()
            let target = try await fetchVerified(cid, client: global.client(), into: scratch)
            let destination = URL(fileURLWithPath: output ?? cid.split(separator: "/").last.map(String.init) ?? cid)
            guard !FileManager.default.fileExists(atPath: destination.path) else {
                throw CLIFailure("\(destination.path) already exists; choose another with -o")
            }
            try Exporter(store: scratch.store).extract(target, to: destination)
            print("Saved \(target) to \(destination.path)")
        }
    }

    struct Cat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a file's bytes, verifying every block.")
        @Argument var cid: String
        @OptionGroup var global: APIOptions

        func run() async throws {
            let scratch = try Scratch()
            let target = try await fetchVerified(cid, client: global.client(), into: scratch)
            do {
                try Exporter(store: scratch.store).read(target) { FileHandle.standardOutput.write(Data($0)) }
            } catch let error as ContentError {
                throw CLIFailure("\(error)")
            }
        }
    }

    struct Ls: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a directory.")
        @Argument var cid: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let entries = try await global.client().listData(cid)
            try global.print(DataListResponse(entries: entries)) {
                print(Output.table(["CID", "SIZE", "TYPE", "NAME"], entries.map { [$0.cid, String($0.size), $0.type, $0.name] }))
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a DAG as a CAR to standard output (or -o FILE).")
        @Argument var cid: String
        @Option(name: [.short, .customLong("output")], help: "Write to this file instead.") var output: String?
        @OptionGroup var global: APIOptions

        func run() async throws {
            let scratch = try Scratch()
            let car = output.map { URL(fileURLWithPath: $0) } ?? scratch.directory.appendingPathComponent("export.car")
            try await global.client().downloadCAR(cid, to: car)
            // Check it before handing it on.
            do {
                _ = try CARStream.importFile(car, into: scratch.store)
            } catch let error as ContentError {
                throw CLIFailure("the exported CAR failed verification: \(error)")
            }
            if output == nil {
                let handle = try FileHandle(forReadingFrom: car)
                while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty { FileHandle.standardOutput.write(data) }
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add the blocks of a CAR file (v1 or v2).")
        @Argument var file: String
        @Flag(help: "Pin the CAR's roots.") var pin = false
        @OptionGroup var global: APIOptions

        func run() async throws {
            let url = URL(fileURLWithPath: file)
            guard FileManager.default.fileExists(atPath: url.path) else { throw CLIFailure("cannot read \(file): no such file") }
            let response = try await global.client().uploadCAR(url, pin: pin)
            print("imported \(response.blocks) blocks; roots: \(response.roots.joined(separator: ", "))")
        }
    }

    struct Pin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Keep a DAG through garbage collection.")
        @Argument var cid: String
        @OptionGroup var global: APIOptions
        func run() async throws {
            try await global.client().pin(cid)
            print("pinned \(cid)")
        }
    }

    struct Unpin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let garbage collection remove a DAG.")
        @Argument var cid: String
        @OptionGroup var global: APIOptions
        func run() async throws {
            try await global.client().unpin(cid)
            print("unpinned \(cid)")
        }
    }

    struct GC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "gc", abstract: "Remove blocks no pin needs.")
        @OptionGroup var global: APIOptions
        func run() async throws {
            let response = try await global.client().garbageCollect()
            print("removed \(response.removedBlocks) blocks, freed \(ResourceParsing.formatBytes(response.freedBytes))")
        }
    }

    struct Where: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show which nodes hold a CID whole (pinned): compute nodes announce theirs with each heartbeat.")
        @Argument(help: "The CID (v0 or v1).") var cid: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            guard let parsed = try? CID(cid) else { throw ValidationError("\(cid) is not a CID") }
            let target = parsed.toV1.description
            let client = try global.client()
            if let info = try? await client.dataset(cid) {
                try global.print(info) { print("dataset \(info.dataset.cid) \(info.dataset.name)\n" + DatasetAdder.shardTable(info)) }
                return
            }
            let holders = try await client.nodes().filter { $0.info.computeNodeInfo.heldRoots.contains(target) }
            let atOrchestrator = try await client.dataStat().pins.contains { (try? CID($0))?.toV1.description == target }
            try global.print(WhereResponse(cid: target, orchestrator: atOrchestrator, nodes: holders.map(\.info.nodeID))) {
                if holders.isEmpty && !atOrchestrator {
                    print("No node holds \(cid) whole. Jobs can still fetch it from a node that has its blocks, or from an IPFS gateway (serve --ipfs-gateway).")
                    return
                }
                var rows = holders.map { node in
                    [shortID(node.info.nodeID), node.liveness.rawValue, node.info.computeNodeInfo.address.isEmpty ? "-" : node.info.computeNodeInfo.address]
                }
                if atOrchestrator { rows.insert(["orchestrator", "-", "-"], at: 0) }
                print(Output.table(["NODE", "LIVENESS", "API ADDRESS"], rows))
            }
        }
    }

    /// `cod data where --output json`.
    struct WhereResponse: Codable {
        var cid: String
        var orchestrator: Bool
        var nodes: [String]
        enum CodingKeys: String, CodingKey { case cid = "CID", orchestrator = "Orchestrator", nodes = "Nodes" }
    }

    struct Stat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the node's store: blocks, bytes, pins.")
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let stat = try await global.client().dataStat()
            try global.print(stat) {
                print("blocks: \(stat.blocks)\nbytes:  \(stat.bytes) (\(ResourceParsing.formatBytes(stat.bytes)))\npins:   \(stat.pins.count)")
                for pin in stat.pins { print("  \(pin)") }
            }
        }
    }
}

/// A progress line on standard error for large inputs.
final class ProgressLine: @unchecked Sendable {
    let total: UInt64
    let enabled: Bool
    private var lastPercent = -1

    init(total: UInt64, enabled: Bool) {
        self.total = max(total, 1)
        self.enabled = enabled
    }

    func update(_ done: UInt64) {
        guard enabled else { return }
        let percent = Int(min(done * 100 / total, 100))
        guard percent != lastPercent else { return }
        lastPercent = percent
        let bar = String(repeating: "#", count: percent / 4) + String(repeating: ".", count: 25 - percent / 4)
        FileHandle.standardError.write(Data("\r[\(bar)] \(percent)% of \(ResourceParsing.formatBytes(total))".utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
