import ContentAddressing
import Models
import StateStore
import Wire

/// Sharded datasets: where a new one's shards should go, checking and storing manifests, and
/// which connected nodes hold each shard now.
struct DatasetService: Sendable {
    let database: AppDatabase
    let now: @Sendable () -> Int64

    /// Healthy, approved nodes with an API address, those holding the fewest shards first.
    func placement(_ wanted: DatasetPlacementRequest) async throws -> DatasetPlacementResponse {
        guard (1...100_000).contains(wanted.shards) else { throw CodError(.badRequest, "Shards must be between 1 and 100000") }
        let connected = try await database.nodes().filter { $0.connection == .connected }
        let nodes = connected.filter {
            $0.membership == .approved && $0.liveness == .healthy && !$0.info.computeNodeInfo.address.isEmpty
        }
        guard wanted.replication >= 1, wanted.replication <= nodes.count else {
            throw CodError(
                .badRequest,
                "replication \(wanted.replication) needs that many healthy, approved compute nodes with an API address; "
                    + "\(nodes.count) of the \(connected.count) connected are",
                hint: nodes.isEmpty ? "start compute nodes (cod serve --compute) first" : "use --replication \(max(nodes.count, 1)) or fewer")
        }
        let byID = Dictionary(nodes.map { ($0.info.nodeID, $0) }, uniquingKeysWith: { first, _ in first })
        let load = Dictionary(nodes.map { ($0.info.nodeID, $0.info.computeNodeInfo.heldRoots.count) }, uniquingKeysWith: { first, _ in first })
        let candidates = ShardPlanner.candidates(shardCount: wanted.shards, nodes: Array(byID.keys), load: load).map { ids in
            ids.compactMap { byID[$0] }.map { DatasetNode(nodeID: $0.info.nodeID, address: $0.info.computeNodeInfo.address) }
        }
        return DatasetPlacementResponse(candidates: candidates)
    }

    /// Checks a manifest (every CID parses) and stores it.
    func save(_ submitted: DatasetManifest) async throws -> DatasetInfo {
        var manifest = submitted
        let problems = Self.problems(manifest)
        guard problems.isEmpty else {
            throw CodError(.badRequest, "the dataset manifest has problems:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
        }
        manifest.createTime = now()
        try await database.saveDataset(manifest)
        return try await info([manifest])[0]
    }

    static func problems(_ manifest: DatasetManifest) -> [ValidationProblem] {
        var problems = manifest.problems()
        if (try? CID(manifest.cid)) == nil { problems.append(.init("CID", "\(manifest.cid) is not a CID")) }
        for shard in manifest.shards where (try? CID(shard.cid)) == nil {
            problems.append(.init("Shards[\(shard.index)].CID", "\(shard.cid.prefix(100)) is not a CID"))
        }
        guard problems.isEmpty else { return problems }
        for shard in manifest.shards {
            for (index, file) in shard.files.enumerated() where (try? CID(file.cid)) == nil {
                problems.append(.init("Shards[\(shard.index)].Files[\(index)].CID", "\(file.cid.prefix(100)) is not a CID"))
            }
        }
        return problems
    }

    func all() async throws -> [DatasetInfo] { try await info(try await database.datasets()) }

    func one(cid: String) async throws -> DatasetInfo {
        guard let manifest = try await database.dataset(cid: cid) else {
            throw CodError(.notFound, "no dataset with root \(cid)", hint: "cod data datasets lists them")
        }
        return try await info([manifest])[0]
    }

    func delete(cid: String) async throws {
        guard try await database.deleteDataset(cid: cid) else { throw CodError(.notFound, "no dataset with root \(cid)") }
    }

    /// Datasets with the connected nodes that announce each shard now (node records read once).
    func info(_ manifests: [DatasetManifest]) async throws -> [DatasetInfo] {
        let nodes = try await database.nodes().filter { $0.connection == .connected }
        return manifests.map { manifest in
            let holders = manifest.shards.map { shard in
                let key = CID.v1String(shard.cid)
                return nodes.filter { $0.info.computeNodeInfo.heldRoots.contains(key) }.map(\.info.nodeID).sorted()
            }
            return DatasetInfo(dataset: manifest, holders: holders)
        }
    }
}
