/// Datasets: a directory's files split into shards that live on different nodes, and the rules
/// that turn a dataset into the partitions of a job. Pure: the orchestrator, the scheduler, the
/// compute node and the CLI all use these, so they agree on what each partition reads.

/// One file of a dataset: its path inside the dataset root, its CID and its size in bytes, and
/// the size of its whole DAG (`TSize`, what a directory's link to it records), so a later add
/// can build the grown dataset's root without the file's blocks.
public struct DatasetFile: Codable, Sendable, Hashable {
    public var path: String
    public var cid: String
    public var size: UInt64
    public var tsize: UInt64?

    public init(path: String, cid: String, size: UInt64, tsize: UInt64? = nil) {
        self.path = path
        self.cid = cid
        self.size = size
        self.tsize = tsize
    }

    enum CodingKeys: String, CodingKey { case path = "Path", cid = "CID", size = "Size", tsize = "TSize" }
}

/// A shard: some of a dataset's files, as a UnixFS directory of its own (the same paths as in
/// the dataset root, holding only this shard's files) that nodes pin and announce whole.
public struct DatasetShard: Codable, Sendable, Hashable {
    public var index: Int
    public var cid: String
    public var bytes: UInt64
    public var files: [DatasetFile]
    /// The nodes the shard was placed on when the dataset was added. Which nodes hold it now is
    /// what they announce (`cod data where`).
    public var nodes: [String]

    public init(index: Int, cid: String, bytes: UInt64, files: [DatasetFile], nodes: [String] = []) {
        self.index = index
        self.cid = cid
        self.bytes = bytes
        self.files = files
        self.nodes = nodes
    }

    enum CodingKeys: String, CodingKey { case index = "Index", cid = "CID", bytes = "Bytes", files = "Files", nodes = "Nodes" }
}

/// A dataset's manifest: the root CID (an ordinary UnixFS directory, the CID `ipfs add -r`
/// gives the folder) and its shards.
public struct DatasetManifest: Codable, Sendable, Hashable {
    public var cid: String
    public var name: String
    public var bytes: UInt64
    public var replication: Int
    public var shards: [DatasetShard]
    /// Unix nanoseconds.
    public var createTime: Int64

    public init(cid: String, name: String, bytes: UInt64, replication: Int, shards: [DatasetShard], createTime: Int64 = 0) {
        self.cid = cid
        self.name = name
        self.bytes = bytes
        self.replication = replication
        self.shards = shards
        self.createTime = createTime
    }

    enum CodingKeys: String, CodingKey {
        case cid = "CID", name = "Name", bytes = "Bytes", replication = "Replication", shards = "Shards", createTime = "CreateTime"
    }

    public var fileCount: Int { shards.reduce(0) { $0 + $1.files.count } }

    /// The largest dataset, in bytes (2^62): every sum of its sizes fits in 64 bits.
    public static let maxBytes: UInt64 = 1 << 62
    /// The most files one manifest may list.
    public static let maxFiles = 1_000_000
    /// The most shards.
    public static let maxShards = 10_000

    /// Problems that make a manifest unusable, each with its field path. Sizes are summed with
    /// checked arithmetic: a manifest comes from a client and may claim anything.
    public func problems() -> [ValidationProblem] {
        var problems: [ValidationProblem] = []
        if cid.isEmpty { problems.append(.init("CID", "required")) }
        if shards.isEmpty { problems.append(.init("Shards", "a dataset needs at least one shard")) }
        if shards.count > Self.maxShards { problems.append(.init("Shards", "at most \(Self.maxShards) shards, got \(shards.count)")) }
        if fileCount > Self.maxFiles { problems.append(.init("Shards", "at most \(Self.maxFiles) files, got \(fileCount)")) }
        if replication < 1 || replication > 100 { problems.append(.init("Replication", "must be between 1 and 100")) }
        if bytes > Self.maxBytes { problems.append(.init("Bytes", "at most \(Self.maxBytes) bytes")) }
        guard problems.isEmpty else { return problems }
        var paths = Set<String>()
        var total: UInt64 = 0
        for (position, shard) in shards.enumerated() {
            let path = "Shards[\(position)]"
            if shard.index != position { problems.append(.init(path + ".Index", "must be \(position)")) }
            if shard.cid.isEmpty { problems.append(.init(path + ".CID", "required")) }
            if shard.files.isEmpty { problems.append(.init(path + ".Files", "a shard needs at least one file")) }
            var sum: UInt64 = 0
            for file in shard.files {
                let (next, overflow) = sum.addingReportingOverflow(file.size)
                sum = overflow ? .max : next
            }
            if sum > Self.maxBytes {
                problems.append(.init(path + ".Files", "the files' sizes add up to more than \(Self.maxBytes) bytes"))
            } else if shard.bytes != sum {
                problems.append(.init(path + ".Bytes", "must be the sum of its files' sizes"))
            }
            total = min(total + min(sum, Self.maxBytes), Self.maxBytes + 1)
            for file in shard.files where !paths.insert(file.path).inserted {
                problems.append(.init(path + ".Files", "\(file.path) is in more than one shard"))
            }
            for file in shard.files where GuestPath.clean("/" + file.path) != "/" + file.path || file.path.isEmpty {
                problems.append(.init(path + ".Files", "\(file.path) is not a clean relative path"))
            }
            for file in shard.files where file.tsize.map({ $0 < file.size }) ?? false {
                problems.append(.init(path + ".Files", "\(file.path): TSize (the file's whole DAG) cannot be smaller than its Size"))
            }
        }
        if total > Self.maxBytes { problems.append(.init("Shards", "the shards add up to more than \(Self.maxBytes) bytes")) }
        return problems
    }
}

/// One version of a named dataset (`cod data add DIR --dataset NAME`): each add makes the next
/// version, a manifest whose shards are the previous version's followed by the new ones.
public struct DatasetVersion: Codable, Sendable, Hashable {
    public var name: String
    public var version: Int
    public var cid: String
    public var shards: Int
    public var owner: String
    /// Unix nanoseconds.
    public var time: Int64

    public init(name: String, version: Int, cid: String, shards: Int, owner: String, time: Int64) {
        (self.name, self.version, self.cid, self.shards, self.owner, self.time) = (name, version, cid, shards, owner, time)
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name", version = "Version", cid = "CID", shards = "Shards", owner = "Owner", time = "Time"
    }
}

/// Splitting files into groups and choosing nodes for shards.
public enum ShardPlanner {
    /// Splits files, in the order given, into `count` contiguous groups of about equal bytes
    /// (each group at least one file). `count` is capped at the number of files.
    public static func splitBySize(_ files: [DatasetFile], into count: Int) -> [[DatasetFile]] {
        let count = min(max(count, 1), files.count)
        guard count > 0 else { return [] }
        let total = files.reduce(0) { $0 + Double($1.size) }
        // Empty files weigh nothing: spread them by number instead.
        if total == 0 { return splitByCount(files, into: count) }
        var groups: [[DatasetFile]] = []
        var current: [DatasetFile] = []
        var done = 0.0
        for (position, file) in files.enumerated() {
            current.append(file)
            done += Double(file.size)
            let groupsLeft = count - groups.count - 1
            let filesLeft = files.count - position - 1
            // Close the group at its share of the bytes (or where the next file would overshoot
            // the share by more than stopping falls short of it), or when the remaining files
            // are just enough to give every remaining group one.
            let share = total * Double(groups.count + 1) / Double(count)
            let next = filesLeft > 0 ? Double(files[position + 1].size) : 0
            if groupsLeft > 0, done >= share || filesLeft == groupsLeft || done + next - share > share - done {
                groups.append(current)
                current = []
            }
        }
        if !current.isEmpty { groups.append(current) }
        return groups
    }

    /// Splits files, in the order given, into `count` contiguous groups of about equal numbers
    /// of files.
    public static func splitByCount(_ files: [DatasetFile], into count: Int) -> [[DatasetFile]] {
        let count = min(max(count, 1), files.count)
        guard count > 0 else { return [] }
        return (0..<count).map { group in
            let start = files.count * group / count
            let end = files.count * (group + 1) / count
            return Array(files[start..<end])
        }
    }

    /// For each shard, the nodes to try in order: `replication` distinct nodes first, then the
    /// others as fallbacks. Shards go round-robin over the nodes, starting with those that
    /// hold the fewest shards (`load`), so replicas of a shard never share a node.
    public static func candidates(shardCount: Int, nodes: [String], load: [String: Int] = [:]) -> [[String]] {
        guard !nodes.isEmpty else { return Array(repeating: [], count: shardCount) }
        let ordered = nodes.sorted { (load[$0, default: 0], $0) < (load[$1, default: 0], $1) }
        return (0..<shardCount).map { shard in
            (0..<ordered.count).map { ordered[(shard + $0) % ordered.count] }
        }
    }
}

/// How a partitioned input is split: `shard` (one partition per shard), `file` (files spread
/// evenly by number) or `size` (files spread evenly by bytes; files are never cut).
public enum PartitionBy: String, Sendable, Hashable, CaseIterable {
    case shard, file, size
}

/// Whether a partition may read data its node does not hold: `local` (never; the partition
/// runs only where its data is) or `any` (its node fetches what it lacks from peers).
public enum DataLocality: String, Sendable, Hashable, CaseIterable {
    case local, any
}

/// `Params.Partition` of an `ipfs` input: `{By: shard|file|size, Count: N, FromShard: I}`, with
/// `Params.Locality`. `FromShard` reads only the shards from index I on: what later adds to a
/// named dataset appended (a dataset trigger's `Inputs: Delta`).
public struct PartitionSpec: Sendable, Hashable {
    public var by: PartitionBy
    public var count: Int?
    public var fromShard: Int
    public var locality: DataLocality

    public init(by: PartitionBy, count: Int? = nil, fromShard: Int = 0, locality: DataLocality = .local) {
        self.by = by
        self.count = count
        self.fromShard = fromShard
        self.locality = locality
    }

    /// The spec of an input source, nil when it is not partitioned or its spec is invalid
    /// (the validator reports why).
    public static func of(_ source: SpecConfig) -> PartitionSpec? {
        var ignored: [ValidationProblem] = []
        return parse(source, path: "", problems: &ignored)
    }

    /// The spec of an input source, nil when it is not partitioned. Problems go to `problems`.
    public static func parse(_ source: SpecConfig, path: String, problems: inout [ValidationProblem]) -> PartitionSpec? {
        var locality = DataLocality.local
        if let value = source.params["Locality"] {
            if let text = value.stringValue, let parsed = DataLocality(rawValue: text.lowercased()) {
                locality = parsed
            } else {
                problems.append(.init(path + ".Params.Locality", "must be local or any, got \(value.stringValue ?? value.typeName)"))
            }
        }
        guard let value = source.params["Partition"], value != .null else {
            if source.params["Locality"] != nil {
                problems.append(.init(path + ".Params.Locality", "only applies to a partitioned input (add Partition: {By: shard})"))
            }
            return nil
        }
        guard let object = value.objectValue else {
            problems.append(.init(path + ".Params.Partition", "must be an object like {By: shard}, got \(value.typeName)"))
            return nil
        }
        for key in object.keys.sorted() where !["By", "Count", "FromShard"].contains(key) {
            problems.append(.init(path + ".Params.Partition.\(key)", "unknown field; Partition takes By, Count and FromShard"))
        }
        guard let byText = object["By"]?.stringValue, let by = PartitionBy(rawValue: byText.lowercased()) else {
            problems.append(.init(path + ".Params.Partition.By", "must be shard, file or size"))
            return nil
        }
        var count: Int?
        if let countValue = object["Count"] {
            if let number = countValue.intValue, number >= 1, number <= 10_000 {
                count = Int(number)
            } else {
                problems.append(.init(path + ".Params.Partition.Count", "must be a whole number between 1 and 10000"))
            }
        }
        if by == .shard, count != nil {
            problems.append(.init(path + ".Params.Partition.Count", "is the number of shards with By: shard; leave it out"))
        }
        var fromShard = 0
        if let value = object["FromShard"] {
            if let number = value.intValue, number >= 0, number < Int64(DatasetManifest.maxShards) {
                fromShard = Int(number)
            } else {
                problems.append(.init(path + ".Params.Partition.FromShard", "must be a shard index between 0 and \(DatasetManifest.maxShards - 1)"))
            }
        }
        return PartitionSpec(by: by, count: count, fromShard: fromShard, locality: locality)
    }
}

/// The part of a dataset one partition reads.
public struct PartitionSlice: Sendable, Hashable {
    public struct File: Sendable, Hashable {
        public var file: DatasetFile
        /// The CID of the shard the file belongs to.
        public var shard: String

        public init(file: DatasetFile, shard: String) {
            self.file = file
            self.shard = shard
        }
    }

    public var files: [File]

    public init(files: [File]) { self.files = files }

    public var bytes: UInt64 { files.reduce(0) { $0 + $1.file.size } }

    /// Bytes of this slice per shard CID.
    public var bytesByShard: [String: UInt64] {
        files.reduce(into: [:]) { $0[$1.shard, default: 0] += $1.file.size }
    }

    /// How many of this slice's bytes a node holding `heldShards` has locally.
    public func localBytes(held heldShards: Set<String>) -> UInt64 {
        files.reduce(0) { $0 + (heldShards.contains($1.shard) ? $1.file.size : 0) }
    }

    /// The shards this slice reads, in dataset order.
    public var shards: [String] {
        var seen = Set<String>()
        return files.compactMap { seen.insert($0.shard).inserted ? $0.shard : nil }
    }
}

public enum DatasetPartitioner {
    /// The slices of a dataset for a partition spec, one per partition (none when `FromShard`
    /// is past the dataset's last shard).
    public static func slices(_ dataset: DatasetManifest, _ spec: PartitionSpec) -> [PartitionSlice] {
        var manifest = dataset
        manifest.shards.removeAll { $0.index < spec.fromShard }
        let all = manifest.shards.flatMap { shard in shard.files.map { PartitionSlice.File(file: $0, shard: shard.cid) } }
        switch spec.by {
        case .shard:
            return manifest.shards.map { shard in PartitionSlice(files: shard.files.map { .init(file: $0, shard: shard.cid) }) }
        case .file, .size:
            let count = min(spec.count ?? (spec.by == .file ? all.count : manifest.shards.count), all.count)
            return split(manifest, into: count, bySize: spec.by == .size).map { slice(of: $0, in: all) }
        }
    }

    /// Splits a dataset's files into `count` groups that never cross a shard boundary when
    /// there are at least as many groups as shards (so each partition's data is on one node):
    /// each shard gets groups in proportion to its bytes (or files), then its files are split
    /// among them. With fewer groups than shards, whole neighbouring shards are grouped.
    static func split(_ manifest: DatasetManifest, into count: Int, bySize: Bool) -> [[DatasetFile]] {
        let shards = manifest.shards.filter { !$0.files.isEmpty }
        guard count > 0, !shards.isEmpty else { return [] }
        func divide(_ files: [DatasetFile], _ parts: Int) -> [[DatasetFile]] {
            bySize ? ShardPlanner.splitBySize(files, into: parts) : ShardPlanner.splitByCount(files, into: parts)
        }
        if count < shards.count {
            // Whole shards per group: treat each shard as one item weighing its bytes or files.
            let items = shards.map { DatasetFile(path: String($0.index), cid: $0.cid, size: bySize ? $0.bytes : UInt64($0.files.count)) }
            let byIndex = Dictionary(shards.map { (String($0.index), $0.files) }, uniquingKeysWith: { first, _ in first })
            return ShardPlanner.splitBySize(items, into: count).map { group in group.flatMap { byIndex[$0.path] ?? [] } }
        }
        // Every shard gets one group, then each further group goes to the shard whose groups
        // are largest (by bytes or files per group) and can still be split.
        let weights = shards.map { bySize ? Double(max($0.bytes, 1)) : Double($0.files.count) }
        var allocation = Array(repeating: 1, count: shards.count)
        for _ in 0..<(count - shards.count) {
            var best: Int?
            for index in shards.indices where allocation[index] < shards[index].files.count {
                if best == nil || weights[index] / Double(allocation[index]) > weights[best!] / Double(allocation[best!]) { best = index }
            }
            guard let chosen = best else { break }
            allocation[chosen] += 1
        }
        return shards.indices.flatMap { divide(shards[$0].files, allocation[$0]) }
    }

    static func slice(of files: [DatasetFile], in all: [PartitionSlice.File]) -> PartitionSlice {
        let shardOf = Dictionary(all.map { ($0.file.path, $0.shard) }, uniquingKeysWith: { first, _ in first })
        return PartitionSlice(files: files.map { .init(file: $0, shard: shardOf[$0.path] ?? "") })
    }

    /// The single partitioned `ipfs` input of a task, with its position and spec; nil when the
    /// task has none.
    public static func partitionedInput(of task: JobTask) -> (index: Int, input: InputSource, spec: PartitionSpec)? {
        for (index, input) in task.inputSources.enumerated() where input.source.normalizedType == "ipfs" {
            if let spec = PartitionSpec.of(input.source) { return (index, input, spec) }
        }
        return nil
    }

    /// The input a node receives for one partition: the dataset input with the partition's
    /// files listed under `Params.Slice` (`[{Path, CID, Size, Shard}]`).
    public static func sliceInput(_ input: InputSource, slice: PartitionSlice) -> InputSource {
        var input = input
        input.source.params["Slice"] = .array(slice.files.map { entry in
            .object([
                "Path": .string(entry.file.path), "CID": .string(entry.file.cid), "Size": .int(Int64(clamping: entry.file.size)),
                "Shard": .string(entry.shard),
            ])
        })
        return input
    }

    /// The files listed under `Params.Slice` with their shards, nil when the input carries no
    /// slice.
    public static func sliceFiles(of source: SpecConfig) -> [PartitionSlice.File]? {
        guard case .array(let items)? = source.params["Slice"] else { return nil }
        return items.compactMap { item in
            guard let object = item.objectValue, let path = object["Path"]?.stringValue, let cid = object["CID"]?.stringValue,
                let size = object["Size"]?.intValue, size >= 0
            else { return nil }
            return PartitionSlice.File(file: DatasetFile(path: path, cid: cid, size: UInt64(size)), shard: object["Shard"]?.stringValue ?? "")
        }
    }
}

/// What an execution read of its `ipfs` inputs: from its node's own store, or over the network.
public struct InputStats: Codable, Sendable, Hashable {
    public var localBytes: UInt64
    /// Everything fetched over the network, `outsideBytes` included.
    public var networkBytes: UInt64
    /// The part of `networkBytes` that came from outside the cluster (external gateways).
    public var outsideBytes: UInt64
    public var files: Int

    public init(localBytes: UInt64 = 0, networkBytes: UInt64 = 0, outsideBytes: UInt64 = 0, files: Int = 0) {
        self.localBytes = localBytes
        self.networkBytes = networkBytes
        self.outsideBytes = outsideBytes
        self.files = files
    }

    enum CodingKeys: String, CodingKey { case localBytes = "LocalBytes", networkBytes = "NetworkBytes", outsideBytes = "OutsideBytes", files = "Files" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        localBytes = try c.decode(UInt64.self, forKey: .localBytes)
        networkBytes = try c.decode(UInt64.self, forKey: .networkBytes)
        outsideBytes = try c.decodeIfPresent(UInt64.self, forKey: .outsideBytes) ?? 0
        files = try c.decode(Int.self, forKey: .files)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(localBytes, forKey: .localBytes)
        try c.encode(networkBytes, forKey: .networkBytes)
        if outsideBytes != 0 { try c.encode(outsideBytes, forKey: .outsideBytes) }
        try c.encode(files, forKey: .files)
    }

    public static func + (lhs: InputStats, rhs: InputStats) -> InputStats {
        InputStats(
            localBytes: lhs.localBytes &+ rhs.localBytes, networkBytes: lhs.networkBytes &+ rhs.networkBytes,
            outsideBytes: lhs.outsideBytes &+ rhs.outsideBytes, files: lhs.files &+ rhs.files)
    }
}
