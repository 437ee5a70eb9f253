import Models

/// Where a verified job's next replica of a partition may go: never to a node that runs one or
/// gave a result for it, to no node sharing a `Distinct` label value with those, and only to nodes that share
/// every `Homogeneous` label value with them.
struct ReplicaPlacement {
    let verification: Verification
    /// The labels of the nodes that ran (or run) a replica of the partition.
    let replicaLabels: [[String: String]]
    let replicaNodes: Set<String>

    init(verification: Verification, nodes: [NodeCandidate], replicaNodes: Set<String>) {
        self.verification = verification
        self.replicaNodes = replicaNodes
        replicaLabels = nodes.filter { replicaNodes.contains($0.id) }.map(\.state.info.labels)
    }

    /// Why `node` may not take the next replica of `partition`; nil when it may.
    func refusal(of node: NodeCandidate, partition: Int) -> String? {
        if replicaNodes.contains(node.id) { return "already runs a replica of partition \(partition) or gave it a result (replicas go to distinct nodes)" }
        let labels = node.state.info.labels
        for key in verification.distinct where key != "node" {
            if let value = labels[key], replicaLabels.contains(where: { $0[key] == value }) {
                return "shares \(key)=\(value) with another replica of partition \(partition) (Distinct)"
            }
        }
        for key in verification.homogeneous {
            if let first = replicaLabels.first, first[key] != labels[key] {
                return "has \(key)=\(labels[key] ?? "(none)"), other replicas of partition \(partition) \(first[key] ?? "(none)") (Homogeneous)"
            }
        }
        return nil
    }
}
