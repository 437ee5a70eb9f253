import Models
import Testing

@Suite("Datasets: shards and partitions")
struct DatasetModelTests {
    static func files(_ sizes: [UInt64]) -> [DatasetFile] {
        sizes.enumerated().map { DatasetFile(path: "f\($0.offset)", cid: "c\($0.offset)", size: $0.element) }
    }

    @Test(arguments: [
        ([100, 100, 100, 100, 100, 100] as [UInt64], 3, [2, 2, 2]),
        ([101, 99, 100, 102, 98, 100], 3, [2, 2, 2]),
        ([500, 10, 10, 10, 10, 10], 2, [1, 5]),
        ([1, 1, 1], 5, [1, 1, 1]),
        ([0, 0, 0, 0], 2, [2, 2]),
        ([10, 10, 10, 1000], 4, [1, 1, 1, 1]),
    ])
    func splitBySizeKeepsOrderBalancesBytesAndLeavesNoGroupEmpty(sizes: [UInt64], count: Int, expected: [Int]) {
        let groups = ShardPlanner.splitBySize(Self.files(sizes), into: count)
        #expect(groups.map(\.count) == expected)
        #expect(groups.flatMap { $0 } == Self.files(sizes))
    }

    @Test func candidatesPutReplicasOnDistinctNodesAndStartWithTheLeastLoaded() {
        let candidates = ShardPlanner.candidates(shardCount: 4, nodes: ["a", "b", "c"], load: ["a": 5])
        #expect(candidates.map { Array($0.prefix(2)) } == [["b", "c"], ["c", "a"], ["a", "b"], ["b", "c"]])
        #expect(candidates.allSatisfy { Set($0).count == 3 })
    }

    static func manifest() -> DatasetManifest {
        let shards = [[100, 100, 100, 100], [100, 100], [50]].enumerated().map { index, sizes in
            let files = sizes.enumerated().map { DatasetFile(path: "s\(index)/f\($0.offset)", cid: "s\(index)c\($0.offset)", size: UInt64($0.element)) }
            return DatasetShard(index: index, cid: "shard\(index)", bytes: files.reduce(0) { $0 + $1.size }, files: files)
        }
        return DatasetManifest(cid: "root", name: "d", bytes: 650, replication: 1, shards: shards)
    }

    @Test func partitionsByFileOrSizeStayInsideShardsWhenThereAreEnough() {
        let manifest = Self.manifest()
        #expect(manifest.problems().isEmpty)
        for by in [PartitionBy.file, .size] {
            let slices = DatasetPartitioner.slices(manifest, PartitionSpec(by: by, count: 5))
            #expect(slices.count == 5)
            #expect(slices.allSatisfy { $0.shards.count == 1 }, "\(by): a partition crosses shards")
            #expect(slices.flatMap { $0.files.map(\.file.path) } == manifest.shards.flatMap { $0.files.map(\.path) })
        }
        // By shard: one partition per shard. Fewer partitions than shards: whole shards grouped.
        #expect(DatasetPartitioner.slices(manifest, PartitionSpec(by: .shard)).map(\.bytes) == [400, 200, 50])
        let grouped = DatasetPartitioner.slices(manifest, PartitionSpec(by: .size, count: 2))
        #expect(grouped.map(\.shards) == [["shard0"], ["shard1", "shard2"]])
        // More partitions than files: one file each.
        #expect(DatasetPartitioner.slices(manifest, PartitionSpec(by: .file, count: 50)).count == 7)
        // A node holding shards 0 and 2 has all of partition 0 locally and none of partition 1.
        let byShard = DatasetPartitioner.slices(manifest, PartitionSpec(by: .shard))
        #expect(byShard[0].localBytes(held: ["shard0", "shard2"]) == 400 && byShard[1].localBytes(held: ["shard0", "shard2"]) == 0)
    }

    @Test func aSliceTravelsInTheInputsParamsAndComesBackTheSame() {
        let slice = DatasetPartitioner.slices(Self.manifest(), PartitionSpec(by: .shard))[1]
        let input = InputSource(source: SpecConfig(type: "ipfs", params: ["CID": "root", "Partition": ["By": "shard"]]), target: "/inputs")
        let sent = DatasetPartitioner.sliceInput(input, slice: slice)
        #expect(DatasetPartitioner.sliceFiles(of: sent.source) == slice.files)
        #expect(DatasetPartitioner.sliceFiles(of: input.source) == nil)
    }

    static let specCases: [(partition: JSONValue, locality: String?, problem: String?)] = [
        (["By": "shard"], nil, nil),
        (["By": "Size", "Count": 4], "any", nil),
        (["By": "rows"], nil, "Partition.By: must be shard, file or size"),
        (["By": "shard", "Count": 3], nil, "is the number of shards"),
        (["By": "file", "Count": 0], nil, "Partition.Count: must be a whole number"),
        (["By": "file", "Lines": 3], nil, "Partition.Lines: unknown field"),
        ("shard", nil, "must be an object"),
        (["By": "file"], "nearby", "Locality: must be local or any"),
    ]

    @Test(arguments: specCases)
    func partitionSpecsAreParsedOrExplained(partition: JSONValue, locality: String?, problem: String?) {
        var params: [String: JSONValue] = ["CID": "root", "Partition": partition]
        if let locality { params["Locality"] = .string(locality) }
        var problems: [ValidationProblem] = []
        let spec = PartitionSpec.parse(SpecConfig(type: "ipfs", params: params), path: "In", problems: &problems)
        if let problem {
            #expect(problems.contains { $0.description.contains(problem) }, "\(problems)")
        } else {
            #expect(problems.isEmpty, "\(problems)")
            #expect(spec != nil)
        }
    }

    @Test func jobsWithPartitionsOrAReduceAreValidated() {
        func job(_ tasks: [JobTask], type: String = "batch") -> [String] {
            JobValidator().validate(Job(name: "j", namespace: "default", type: type, tasks: tasks)).map(\.description)
        }
        func task(_ name: String, inputs: [InputSource] = []) -> JobTask {
            var task = JobTask(name: name, engine: SpecConfig(type: "process", params: ["Command": "true"]), publisher: SpecConfig(type: "ipfs"))
            task.inputSources = inputs
            return task
        }
        let partitioned = InputSource(source: SpecConfig(type: "ipfs", params: ["CID": "root", "Partition": ["By": "shard"]]), target: "/inputs")
        let plain = InputSource(source: SpecConfig(type: "ipfs", params: ["CID": "other"]), target: "/data")
        #expect(job([task("map", inputs: [partitioned]), task("reduce")]).isEmpty)
        #expect(job([task("map", inputs: [partitioned, plain])]).isEmpty)
        #expect(job([task("map", inputs: [partitioned])], type: "ops").contains { $0.contains("partitioned inputs need a batch job") })
        #expect(job([task("map"), task("map")]).contains { $0.contains("must differ from Tasks[0].Name") })
        #expect(job([task("map"), task("reduce", inputs: [InputSource(source: SpecConfig(type: "ipfs", params: ["CID": "x"]), target: "/inputs/extra")])])
            .contains { $0.contains("where the partitions' outputs appear") })
        var second = partitioned
        second.target = "/more"
        #expect(job([task("map", inputs: [partitioned, second])]).contains { $0.contains("only one input can be partitioned") })
        #expect(job([task("a"), task("b"), task("c")]).contains { $0.contains("a job has one task, or two") })
        var local = task("map")
        local.publisher = SpecConfig(type: "local")
        #expect(job([local, task("reduce")]).contains { $0.contains("must be ipfs when a reduce task follows") })
    }
}
