@testable import CodTestKit
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Foundation
import Models
import Testing
import Wire

/// A compute node's own API, through real processes: reads stay open for peers; uploads, pins
/// and `gc` take the node's own key, or (an upload only) a grant the orchestrator signed for
/// that node, root and holder. Every refusal is checked on the node's store, not only by status.
@Suite("Compute node data access", .serialized)
struct NodeDataAccessTests {
    /// One exchange with a node's API at `address` (`http://HOST:PORT`).
    static func node(
        _ address: String, _ method: String, _ path: String, body: Data? = nil, authorization: String? = nil
    ) async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: address + path)!, timeoutInterval: 30)
        request.httpMethod = method
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        request.httpBody = body
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    /// Whether the node at `address` holds `cid`'s root block (asked through its open gateway).
    static func holds(_ address: String, _ cid: String) async throws -> Bool {
        let (status, _) = try await node(address, "GET", "/ipfs/\(cid)?format=raw")
        return status == 200
    }

    /// New content added to the orchestrator only, and its CAR as bytes.
    static func content(_ stack: DevstackProcess, _ label: String) async throws -> (cid: String, car: Data) {
        let folder = try Paths.temporaryDirectory("cod-node-access").appendingPathComponent(label)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("\(label) \(UUID().uuidString)\n".utf8).write(to: folder.appendingPathComponent("\(label).txt"))
        let add = try await stack.cod("data", "add", "-q", folder.path)
        #expect(add.status == 0, "\(add.stderr)")
        let cid = add.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let car = folder.deletingLastPathComponent().appendingPathComponent("\(label).car")
        try await stack.client.downloadCAR(cid, to: car)
        return (cid, try Data(contentsOf: car))
    }

    static func connectedNodes(_ stack: DevstackProcess) async throws -> [(id: String, address: String)] {
        let nodes = try await stack.client.nodes().filter { $0.connection == .connected && !$0.info.computeNodeInfo.address.isEmpty }
        return nodes.map { ($0.info.nodeID, $0.info.computeNodeInfo.address) }.sorted { $0.id < $1.id }
    }

    @Test func writesNeedTheNodesOwnKeyWhileReadsStayOpen() async throws {
        let stack = try await SecurityStack.shared.get()
        let nodes = try await Self.connectedNodes(stack)
        let (nodeID, address) = try #require(nodes.first)
        let nodeKey = try stack.nodeAPIKey(nodeID: nodeID)
        let (cid, car) = try await Self.content(stack, "own-key")

        // No credentials, the orchestrator's admin key, and a made-up key: refused, nothing stored.
        for authorization in [nil, "Bearer \(stack.apiKey)", "Bearer codnode_guess", "Basic YWRtaW46YWRtaW4=", "CodGrant x.y"] {
            let (status, body) = try await Self.node(address, "PUT", "/api/v1/data/car?pin=true", body: car, authorization: authorization)
            #expect(status == 401, "\(authorization ?? "none"): \(status) \(body)")
            #expect(try await !Self.holds(address, cid))
        }
        let port = try #require(address.split(separator: ":").last.map(String.init))
        let folder = try Paths.temporaryDirectory("cod-nk")
        try Data("refused \(UUID().uuidString)\n".utf8).write(to: folder.appendingPathComponent("refused.txt"))
        let refused = try await Run.async(
            [try Paths.cod.path, "data", "add", "-q", "--pin", "--api-port", port, folder.path], environment: stack.environment)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("not this node's API key"), "\(refused.stderr)")

        // The operator's key stores and pins.
        let (stored, body) = try await Self.node(address, "PUT", "/api/v1/data/car?pin=true", body: car, authorization: "Bearer \(nodeKey)")
        #expect(stored == 200, "\(body)")
        #expect(try await Self.holds(address, cid))

        // Unpin and gc without the key leave it pinned and stored; so does a grant for something else.
        for (method, path) in [("DELETE", "/api/v1/data/pin/\(cid)"), ("POST", "/api/v1/data/gc"), ("PUT", "/api/v1/data/pin/\(cid)"), ("GET", "/api/v1/data/stat")] {
            let (status, body) = try await Self.node(address, method, path, authorization: nil)
            #expect(status == 401, "\(method) \(path): \(status) \(body)")
            let (withAdmin, _) = try await Self.node(address, method, path, authorization: "Bearer \(stack.apiKey)")
            #expect(withAdmin == 401, "\(method) \(path) with the orchestrator's key: \(withAdmin)")
        }
        let (stat, statBody) = try await Self.node(address, "GET", "/api/v1/data/stat", authorization: "Bearer \(nodeKey)")
        #expect(stat == 200)
        #expect(statBody.contains(cid), "\(statBody)")
        #expect(try await Self.holds(address, cid))

        // Peers and users read without credentials: the gateway, listings, the agent.
        for path in ["/ipfs/\(cid)", "/api/v1/data/ls/\(cid)", "/api/v1/agent/alive"] {
            let (status, body) = try await Self.node(address, "GET", path)
            #expect(status == 200, "\(path): \(status) \(body)")
        }
        // A path that climbs out of the open gateway reaches nothing closed.
        let (climb, _) = try await Self.node(address, "GET", "/ipfs/../api/v1/data/stat")
        #expect(climb != 200)

        // The operator's gc through the CLI works with the node's key; its pin keeps the data.
        let gc = try await Run.async([try Paths.cod.path, "data", "gc", "--api-port", port], environment: ["COD_API_KEY": nodeKey])
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(try await Self.holds(address, cid))
    }

    @Test func anUploadGrantStoresItsOneShardOnItsOneNode() async throws {
        let stack = try await SecurityStack.shared.get()
        let nodes = try await Self.connectedNodes(stack)
        #expect(nodes.count >= 2)
        let (nodeA, addressA) = try #require(nodes.first)
        let (_, addressB) = try #require(nodes.last)
        let (cid, car) = try await Self.content(stack, "granted")
        let (otherCID, otherCAR) = try await Self.content(stack, "ungranted")
        let holder = "dataset:\(cid)"
        func grant(_ bytes: Int = car.count, root: String? = nil, seconds: Int64? = nil) async throws -> String {
            "CodGrant " + (try await stack.client.uploadGrant(nodeID: nodeA, root: root ?? cid, holder: holder, bytes: bytes, seconds: seconds)).token
        }
        let upload = "/api/v1/data/car?pin=true&holder=\(holder)"

        // On another node: refused there, stored nowhere.
        var (status, body) = try await Self.node(addressB, "PUT", upload, body: car, authorization: try await grant())
        #expect(status == 401 && body.contains("not this one"), "\(status) \(body)")
        #expect(try await !Self.holds(addressB, cid))

        // Another CAR than the granted root: refused before a block is stored.
        (status, body) = try await Self.node(addressA, "PUT", upload, body: otherCAR, authorization: try await grant(otherCAR.count))
        #expect(status == 403 && body.contains("is for root"), "\(status) \(body)")
        #expect(try await !Self.holds(addressA, otherCID))

        // Pinned for another holder, or not pinned at all: refused.
        (status, body) = try await Self.node(
            addressA, "PUT", "/api/v1/data/car?pin=true&holder=dataset:\(otherCID)", body: car, authorization: try await grant())
        #expect(status == 403, "\(status) \(body)")
        (status, body) = try await Self.node(addressA, "PUT", "/api/v1/data/car", body: car, authorization: try await grant())
        #expect(status == 403, "\(status) \(body)")
        #expect(try await !Self.holds(addressA, cid))

        // More bytes than granted: refused.
        (status, body) = try await Self.node(addressA, "PUT", upload, body: car, authorization: try await grant(car.count - 1))
        #expect(status == 413, "\(status) \(body)")
        #expect(try await !Self.holds(addressA, cid))

        // A tampered grant (its claims re-encoded for a larger size) and an expired one.
        let genuine = try await grant()
        let parts = genuine.dropFirst("CodGrant ".count).split(separator: ".")
        let claimBytes = try #require(Base64URL.decode(String(parts[0])))
        var claims = try #require(try JSONSerialization.jsonObject(with: claimBytes) as? [String: Any])
        claims["MaxBytes"] = 1 << 30
        let forged = "CodGrant " + Base64URL.encode(try JSONSerialization.data(withJSONObject: claims)) + "." + parts[1]
        (status, body) = try await Self.node(addressA, "PUT", upload, body: car, authorization: forged)
        #expect(status == 401 && body.contains("not signed by the orchestrator"), "\(status) \(body)")
        let shortLived = try await grant(seconds: 1)
        try await Task.sleep(for: .seconds(2.5))
        (status, body) = try await Self.node(addressA, "PUT", upload, body: car, authorization: shortLived)
        #expect(status == 401 && body.contains("expired"), "\(status) \(body)")
        #expect(try await !Self.holds(addressA, cid))

        // The genuine grant: stored and pinned for the dataset; then spent.
        (status, body) = try await Self.node(addressA, "PUT", upload, body: car, authorization: genuine)
        #expect(status == 200, "\(status) \(body)")
        #expect(try await Self.holds(addressA, cid))
        (status, body) = try await Self.node(addressA, "PUT", upload, body: car, authorization: genuine)
        #expect(status == 401 && body.contains("used already"), "\(status) \(body)")

        // A grant opens nothing else: unpin and gc with it leave the shard pinned.
        for (method, path) in [("DELETE", "/api/v1/data/pin/\(cid)?holder=\(holder)"), ("POST", "/api/v1/data/gc")] {
            (status, body) = try await Self.node(addressA, method, path, authorization: try await grant())
            #expect(status == 403, "\(method) \(path): \(status) \(body)")
        }
        let nodeKey = try stack.nodeAPIKey(nodeID: nodeA)
        _ = try await Self.node(addressA, "POST", "/api/v1/data/gc", authorization: "Bearer \(nodeKey)")
        #expect(try await Self.holds(addressA, cid))
        let (_, stat) = try await Self.node(addressA, "GET", "/api/v1/data/stat", authorization: "Bearer \(nodeKey)")
        #expect(stat.contains(cid), "\(stat)")
    }

    /// Grants come only from the orchestrator, to users who may write data, for sensible values.
    @Test func grantRequestsAreCheckedByTheOrchestrator() async throws {
        let stack = try await SecurityStack.shared.get()
        let (nodeA, _) = try #require(try await Self.connectedNodes(stack).first)
        let root = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyka"
        func ask(_ fields: [String: Any], key: String?? = .none) async throws -> (Int, String) {
            var body: [String: Any] = ["NodeID": nodeA, "Root": root, "Holder": "dataset:\(root)", "Bytes": 1000]
            body.merge(fields) { $1 }
            return try await api(stack, "POST", "/api/v1/orchestrator/datasets/grants", body: try JSONSerialization.data(withJSONObject: body), key: key)
        }
        let (fine, fineBody) = try await ask([:])
        #expect(fine == 200, "\(fineBody)")
        let hostile: [([String: Any], Int)] = [
            (["Bytes": 0], 400), (["Bytes": -1], 400), (["Bytes": Int.max], 400),
            (["Seconds": 0], 400), (["Seconds": -5], 400), (["Seconds": Int64.max], 400),
            (["Root": "nonsense"], 400), (["Root": String(repeating: "b", count: 100_000)], 413),
            (["Holder": "user:admin"], 400), (["Holder": "dataset:../../etc"], 400), (["Holder": "result:e-1"], 400),
            (["NodeID": "n-nobody"], 404), (["NodeID": "../../etc/passwd"], 404),
        ]
        for (fields, expected) in hostile {
            let (status, body) = try await ask(fields)
            #expect(status == expected, "\(fields.keys.sorted()): \(status) \(body.prefix(300))")
            #expect(!body.contains("\"Token\""))
        }
        let (anonymous, _) = try await ask([:], key: .some(nil))
        #expect(anonymous == 401)
        let reader = try await AccessControlTests.addUser(stack, "grant-reader-\(UUID().uuidString.prefix(6))", "read:data")
        let (readOnly, readOnlyBody) = try await ask([:], key: .some(reader))
        #expect(readOnly == 403, "\(readOnlyBody)")
        #expect(await isServing(stack))
    }

    /// The node's key is written 0600 from creation and never logged.
    @Test func theNodesKeyIsPrivateAndStaysOutOfTheLog() async throws {
        let stack = try await SecurityStack.shared.get()
        let (nodeID, _) = try #require(try await Self.connectedNodes(stack).first)
        let file = try stack.computeDirectory(nodeID: nodeID).appendingPathComponent("api.key")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? NSNumber).intValue
        #expect(mode & 0o077 == 0, "mode \(String(mode, radix: 8))")
        let key = try stack.nodeAPIKey(nodeID: nodeID)
        #expect(key.hasPrefix("codnode_") && key.count > 40)
        let log = stack.logText
        #expect(log.contains(file.path))
        let leaked = log.contains(key)
        #expect(!leaked)
    }
}
