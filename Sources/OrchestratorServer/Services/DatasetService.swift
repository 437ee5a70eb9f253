import BlockStore
import ContentAddressing
import Foundation
import Models
import NodeAPI
import StateStore
import Wire

/// Sharded datasets: where a new one's shards should go, checking and storing manifests, and
/// which connected nodes hold each shard now.
struct DatasetService: Sendable {
    let database: AppDatabase
    let now: @Sendable () -> Int64
    /// The orchestrator's key: it signs upload grants, which nodes check with the key they
    /// enrolled with.
    let signer: KeySigner
    /// The most a single shard upload may hold.
    let maxShardBytes: Int

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

    /// How long a grant lives unless asked otherwise.
    static let defaultGrantSeconds: Int64 = 600

    /// A grant to upload one shard (`Root`, at most `Bytes`) to one healthy, approved node,
    /// pinned for a dataset. The route has checked the caller may write data.
    func grant(_ wanted: UploadGrantRequest) async throws -> UploadGrantResponse {
        let seconds = wanted.seconds ?? Self.defaultGrantSeconds
        guard (1...UploadGrant.maxLifetimeSeconds).contains(seconds) else {
            throw CodError(.badRequest, "Seconds must be between 1 and \(UploadGrant.maxLifetimeSeconds), got \(seconds)")
        }
        guard (1...maxShardBytes).contains(wanted.bytes) else {
            throw CodError(.badRequest, "Bytes must be between 1 and \(maxShardBytes) (the largest shard a node takes), got \(wanted.bytes)")
        }
        guard (try? CID(wanted.root)) != nil else { throw CodError(.badRequest, "Root \(wanted.root.prefix(100)) is not a CID") }
        guard wanted.holder.hasPrefix("dataset:"), PinHolder.isValid(wanted.holder),
              (try? CID(String(wanted.holder.dropFirst("dataset:".count)))) != nil
        else {
            throw CodError(.badRequest, "Holder must be dataset:<the dataset's root CID>, got \(wanted.holder.prefix(140))")
        }
        guard let node = try await database.nodes().first(where: { $0.info.nodeID == wanted.nodeID }) else {
            throw CodError(.notFound, "no node \(wanted.nodeID.prefix(80))", hint: "ask for placement (POST /api/v1/orchestrator/datasets/placement) first")
        }
        // Suspect is good enough: it was healthy at placement and a grant outlives a missed heartbeat.
        guard node.connection == .connected, node.membership == .approved, node.liveness != .lost else {
            throw CodError(
                .conflict,
                "node \(node.info.nodeID) takes no uploads now: it is \(node.connection.rawValue), \(node.membership.rawValue) and \(node.liveness.rawValue)",
                hint: "ask for placement again")
        }
        let now = now() / 1_000_000_000
        let grant = UploadGrant(
            id: "ug-" + Credentials.randomBytes(5).hexString, nodeID: node.info.nodeID, root: wanted.root, holder: wanted.holder,
            maxBytes: wanted.bytes, expires: now + seconds)
        return UploadGrantResponse(grant: grant, token: try grant.token(sign: signer.sign))
    }

    /// Checks a manifest (every CID parses) and stores it; with `after`, as the next version of
    /// the named dataset `Name`, which only its owner (whoever made its first version) or an
    /// admin may add to.
    func save(_ submitted: DatasetManifest, after: Int?, by principal: Principal?) async throws -> DatasetInfo {
        var manifest = submitted
        var problems = Self.problems(manifest)
        if let after {
            if let problem = ScheduleSpec.nameProblem(manifest.name) { problems.append(.init("Dataset.Name", problem)) }
            if after < 0 || after >= Int(Int32.max) { problems.append(.init("After", "must be the version the dataset stands at (0 before the first)")) }
        }
        guard problems.isEmpty else {
            throw CodError(.badRequest, "the dataset manifest has problems:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
        }
        manifest.createTime = now()
        guard let after else {
            try await database.saveDataset(manifest)
            return try await info([manifest])[0]
        }
        let version = try await database.saveDatasetVersion(manifest, after: after, owner: principal?.name ?? "") { head in
            guard let principal, !principal.isAdmin, head.owner != principal.name else { return }
            throw CodError(
                .forbidden, "dataset \(head.name) belongs to \(head.owner.isEmpty ? "the operator" : head.owner); user \(principal.name) may not add to it",
                hint: "add your files under a dataset name of your own")
        }
        var saved = try await info([manifest])[0]
        saved.version = version.version
        return saved
    }

    /// The newest version of a named dataset.
    func named(_ name: String) async throws -> DatasetInfo {
        guard let head = try await database.datasetHead(name: name), let manifest = try await database.dataset(cid: head.cid) else {
            throw CodError(.notFound, "no dataset named \(name.prefix(80))", hint: "make one with: cod data add DIR --dataset \(name.prefix(80))")
        }
        var found = try await info([manifest])[0]
        found.version = head.version
        return found
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
