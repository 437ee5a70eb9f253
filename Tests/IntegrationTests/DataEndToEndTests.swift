@testable import CodTestKit
import APIClient
import ContentAddressing
import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import Testing
import Wire

/// CIDv1 text of a CID, for comparing with node announcements.
enum CodClientCID {
    static func v1(_ text: String) throws -> String { try CID(text).toV1.description }
}

/// `cod data` and the gateway against a devstack, as a user drives them.
@Suite("Data commands and gateway", .serialized)
struct DataEndToEndTests {
    func planets() throws -> URL {
        let folder = try Paths.temporaryDirectory("cod-planets").appendingPathComponent("planets")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("Hello Mars!\n".utf8).write(to: folder.appendingPathComponent("mars.txt"))
        try Data("Hello Venus!\n".utf8).write(to: folder.appendingPathComponent("venus.txt"))
        return folder
    }

    func http(_ stack: DevstackProcess, _ path: String, method: String = "GET", headers: [String: String] = [:]) async throws -> (Int, Data, [AnyHashable: Any]) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(stack.port)\(path)")!)
        request.httpMethod = method
        request.setValue("Bearer \(stack.apiKey)", forHTTPHeaderField: "Authorization")
        for (key, value) in headers { request.setValue(value, forHTTPHeaderField: key) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        return (http.statusCode, data, http.allHeaderFields)
    }

    @Test func addListCatGetExportImport() async throws {
        let stack = try await SharedDevstack.shared.get()
        let folder = try planets()
        let add = try await stack.cod("data", "add", folder.path, "--pin")
        #expect(add.status == 0, "\(add.stderr)")
        #expect(add.stdout.contains("added QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY planets"), "\(add.stdout)")
        let v1 = try await stack.cod("data", "add", "-q", "--cid-version", "1", folder.path)
        #expect(v1.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi")
        let root = "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY"
        let ls = try await stack.cod("data", "ls", root)
        #expect(ls.stdout.contains("mars.txt") && ls.stdout.contains("venus.txt"))
        let cat = try await stack.cod("data", "cat", root + "/venus.txt")
        #expect(cat.stdout == "Hello Venus!\n")
        let out = try Paths.temporaryDirectory("cod-get").appendingPathComponent("copy")
        let get = try await stack.cod("data", "get", root, "-o", out.path)
        #expect(get.status == 0, "\(get.stderr)")
        #expect(try String(contentsOf: out.appendingPathComponent("mars.txt"), encoding: .utf8) == "Hello Mars!\n")
        let car = try Paths.temporaryDirectory("cod-car").appendingPathComponent("planets.car")
        let export = try await stack.cod("data", "export", root, "-o", car.path)
        #expect(export.status == 0, "\(export.stderr)")
        #expect(try Data(contentsOf: car).count == 309)
        let stat = try await stack.cod("data", "stat", "--output", "json")
        let decoded = try JSONDecoder().decode(DataStatResponse.self, from: Data(stat.stdout.utf8))
        #expect(decoded.pins.contains(root))
        // Unpinned data goes at gc; pinned stays; a re-import brings it back.
        _ = try await stack.cod("data", "unpin", root)
        let gc = try await stack.cod("data", "gc")
        #expect(gc.stdout.contains("removed"))
        let gone = try await stack.cod("data", "cat", root + "/mars.txt")
        #expect(gone.status != 0)
        #expect(gone.stderr.contains("not in this node's store"), "\(gone.stderr)")
        let reimport = try await stack.cod("data", "import", car.path, "--pin")
        #expect(reimport.stdout.contains("imported 3 blocks; roots: \(root)"), "\(reimport.stdout)\(reimport.stderr)")
        #expect(try await stack.cod("data", "cat", root + "/mars.txt").stdout == "Hello Mars!\n")
    }

    @Test func corruptAndHostileInputIsRejected() async throws {
        let stack = try await SharedDevstack.shared.get()
        let folder = try planets()
        let car = try Paths.temporaryDirectory("cod-car").appendingPathComponent("p.car")
        let add = try await stack.cod("data", "add", "-n", "--car", car.path, folder.path)
        #expect(add.status == 0, "\(add.stderr)")
        var bytes = try Data(contentsOf: car)
        bytes[bytes.count - 4] ^= 0xFF
        let corrupt = car.deletingLastPathComponent().appendingPathComponent("corrupt.car")
        try bytes.write(to: corrupt)
        let rejected = try await stack.cod("data", "import", corrupt.path)
        #expect(rejected.status != 0)
        #expect(rejected.stderr.contains("does not match its CID"), "\(rejected.stderr)")
        let truncated = car.deletingLastPathComponent().appendingPathComponent("truncated.car")
        try Data(try Data(contentsOf: car).prefix(100)).write(to: truncated)
        let short = try await stack.cod("data", "import", truncated.path)
        #expect(short.status != 0)
        #expect(short.stderr.contains("truncated"), "\(short.stderr)")
        let badCID = try await stack.cod("data", "cat", "not-a-cid")
        #expect(badCID.status != 0)
        #expect(badCID.stderr.contains("not a CID"), "\(badCID.stderr)")
        #expect(try await stack.cod("agent", "alive").stdout.contains("OK"))
    }

    /// Data added by CID is a job's input: the compute node fetches it as a CAR, verifies every
    /// block, and lays the tree out at the input's target.
    @Test func ipfsInputsReachJobs() async throws {
        let stack = try await SharedDevstack.shared.get()
        let folder = try Paths.temporaryDirectory("cod-ipfs-in").appendingPathComponent("data")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("nested"), withIntermediateDirectories: true)
        try Data("hello input\n".utf8).write(to: folder.appendingPathComponent("data.txt"))
        try Data("inner file\n".utf8).write(to: folder.appendingPathComponent("nested/inner.txt"))
        let cid = try await stack.cod("data", "add", "-q", folder.path).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let run = try await stack.cod("wasm", "run", try Paths.fixture("files"), "-i", "ipfs://\(cid):/inputs")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("read: hello input"))
        #expect(run.stdout.contains("nested: inner file"))
        // Bacalhau's src=,dst= form, and a single file as the input.
        let file = try await stack.cod("data", "add", "-q", folder.appendingPathComponent("data.txt").path)
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let single = try await stack.cod("wasm", "run", try Paths.fixture("files"), "-i", "src=ipfs://\(file),dst=/inputs/data.txt")
        #expect(single.status == 0, "\(single.stderr)")
        #expect(single.stdout.contains("read: hello input"))
        let missing = try await stack.cod("wasm", "run", try Paths.fixture("files"), "-i", "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyka")
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("is not available"), "\(missing.stderr)")
        let bad = try await stack.cod("wasm", "run", try Paths.fixture("files"), "-i", "ipfs://nonsense")
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("is not a CID"), "\(bad.stderr)")
    }

    /// Every node answers: a compute node's own API takes data and serves it back.
    @Test func computeNodesServeTheirOwnStore() async throws {
        let stack = try await SharedDevstack.shared.get()
        let nodes = try await stack.client.nodes()
        let node = try #require(nodes.first)
        let port = try #require(node.info.computeNodeInfo.address.split(separator: ":").last.flatMap { Int($0) })
        let folder = try planets()
        let cod = try Paths.cod.path
        // Writing to a node takes its own key, which its operator has.
        let operatorKey = ["COD_API_KEY": try stack.nodeAPIKey(nodeID: node.info.nodeID)]
        let add = try await Run.async([cod, "data", "add", "-q", folder.path, "--api-port", String(port)], environment: operatorKey)
        #expect(add.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY", "\(add.stderr)")
        let cat = try await Run.async([cod, "data", "cat", "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY/venus.txt", "--api-port", String(port)])
        #expect(cat.stdout == "Hello Venus!\n")
        let alive = try await Run.async([cod, "agent", "alive", "--api-port", String(port)])
        #expect(alive.stdout.contains("OK"))
    }

    /// Data pinned on one compute node only reaches jobs on the others: nodes announce the
    /// roots they hold, and an executing node fetches from such a peer (verifying every block).
    @Test func inputsComeFromPeersThatHoldThem() async throws {
        let stack = try await SharedDevstack.shared.get()
        let client = stack.client
        let nodes = try await client.nodes()
        let holder = try #require(nodes.first)
        let port = try #require(holder.info.computeNodeInfo.address.split(separator: ":").last.flatMap { Int($0) })
        // Content no other test adds, so only this node can have it.
        let folder = try Paths.temporaryDirectory("cod-peer").appendingPathComponent("inputs")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let marker = UUID().uuidString
        try Data("peer data \(marker)\n".utf8).write(to: folder.appendingPathComponent("data.txt"))
        let cod = try Paths.cod.path
        let add = try await Run.async(
            [cod, "data", "add", "-q", "--pin", folder.path, "--api-port", String(port)],
            environment: ["COD_API_KEY": try stack.nodeAPIKey(nodeID: holder.info.nodeID)])
        let cid = add.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(add.status == 0, "\(add.stderr)")
        // The orchestrator does not have it; wait for the holder's next heartbeat to announce it.
        let v1 = try #require(try? CodClientCID.v1(cid))
        for _ in 0..<100 {
            if try await client.nodes().contains(where: { $0.info.computeNodeInfo.heldRoots.contains(v1) }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        // `data where` names the holder (and not the orchestrator, which does not have it).
        let whereIs = try await stack.cod("data", "where", cid, "--output", "json")
        #expect(whereIs.status == 0, "\(whereIs.stderr)")
        #expect(whereIs.stdout.contains(holder.info.nodeID) && whereIs.stdout.contains("\"Orchestrator\" : false"), "\(whereIs.stdout)")
        let nowhere = try await stack.cod("data", "where", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
        #expect(nowhere.stdout.contains("No node holds"), "\(nowhere.stdout)")
        let run = try await stack.cod("wasm", "run", try Paths.fixture("files"), "-i", "ipfs://\(cid):/inputs", "--count", "3")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.components(separatedBy: "read: peer data \(marker)").count - 1 == 3, "\(run.stdout)")
    }

    /// A compute node configured with an external trustless gateway fetches inputs no Cod node
    /// of its cluster has from there (here another Cod cluster's gateway plays that part).
    @Test func inputsFromAnExternalGateway() async throws {
        let external = try await DevstackProcess.start(dataDirectory: try Paths.temporaryDirectory("cod-external"), computes: 0)
        defer { external.stop() }
        let folder = try Paths.temporaryDirectory("cod-ext-data").appendingPathComponent("inputs")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let marker = UUID().uuidString
        try Data("external \(marker)\n".utf8).write(to: folder.appendingPathComponent("data.txt"))
        let cid = try await external.cod("data", "add", "-q", folder.path).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let cluster = try await DevstackProcess.start(
            dataDirectory: try Paths.temporaryDirectory("cod-uses-external"), computes: 1,
            extraArguments: ["--ipfs-gateway", "http://127.0.0.1:\(external.port)"])
        defer { cluster.stop() }
        let run = try await cluster.cod("wasm", "run", try Paths.fixture("files"), "-i", "ipfs://\(cid):/inputs")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("read: external \(marker)"))
    }

    @Test func gatewayFormats() async throws {
        let stack = try await SharedDevstack.shared.get()
        let folder = try planets()
        _ = try await stack.cod("data", "add", "--pin", folder.path)
        let root = "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY"
        let (plain, body, _) = try await http(stack, "/ipfs/\(root)/mars.txt")
        #expect(plain == 200)
        #expect(String(decoding: body, as: UTF8.self) == "Hello Mars!\n")
        let (carStatus, car, carHeaders) = try await http(stack, "/ipfs/\(root)", headers: ["Accept": "application/vnd.ipld.car"])
        #expect(carStatus == 200)
        #expect(car.count == 309)
        #expect((carHeaders["Content-Type"] as? String)?.contains("application/vnd.ipld.car") == true)
        let (rawStatus, raw, _) = try await http(stack, "/ipfs/\(root)?format=raw")
        #expect(rawStatus == 200)
        #expect(raw.count == 105)  // the planets root block
        let (blockScope, blockCAR, _) = try await http(stack, "/ipfs/\(root)/mars.txt?format=car&dag-scope=block")
        #expect(blockScope == 200)
        #expect(blockCAR.count < car.count)
        let (head, headBody, _) = try await http(stack, "/ipfs/\(root)/mars.txt", method: "HEAD")
        #expect(head == 200)
        #expect(headBody.isEmpty)
        let (listing, html, _) = try await http(stack, "/ipfs/\(root)")
        #expect(listing == 200)
        #expect(String(decoding: html, as: UTF8.self).contains("venus.txt"))
        #expect(try await http(stack, "/ipfs/garbage").0 == 400)
        #expect(try await http(stack, "/ipfs/\(root)/pluto.txt").0 == 404)
        #expect(try await http(stack, "/ipfs/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyka").0 == 404)
        #expect(try await http(stack, "/ipfs/\(root)?format=car&dag-scope=sideways").0 == 400)
        // entity-bytes: only the blocks that hold the range (root + first leaf of four).
        let big = try Paths.temporaryDirectory("cod-big").appendingPathComponent("big.bin")
        try Data((0..<1_048_576).map { UInt8($0 % 251) }).write(to: big)
        let bigCID = try await stack.cod("data", "add", "-q", "--cid-version", "1", big.path).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let (rangeStatus, rangeCAR, _) = try await http(stack, "/ipfs/\(bigCID)?format=car&dag-scope=entity&entity-bytes=0:10")
        #expect(rangeStatus == 200)
        let ranged = try CAR.read(Array(rangeCAR))
        #expect(ranged.blocks.count == 2)
        let (fullStatus, fullCAR, _) = try await http(stack, "/ipfs/\(bigCID)?format=car")
        #expect(fullStatus == 200)
        #expect(try CAR.read(Array(fullCAR)).blocks.count == 5)
        let (tailStatus, tailCAR, _) = try await http(stack, "/ipfs/\(bigCID)?format=car&dag-scope=entity&entity-bytes=600000:*")
        #expect(tailStatus == 200)
        #expect(try CAR.read(Array(tailCAR)).blocks.count == 3)  // root + leaves 3 and 4
    }
}
