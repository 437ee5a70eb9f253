@testable import CodTestKit
import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Models
import SafeFS
@testable import OrchestratorServer
import Testing
import Wire

/// The orchestrator's routes in process, without a socket or the binary: error bodies,
/// paging, 404s and node actions.
@Suite("Orchestrator routes")
struct RouterTests {
    static func test(_ body: @Sendable (Orchestrator, AuthorizedClient) async throws -> Void) async throws {
        let orchestrator = try Orchestrator.inScratchFolder("cod-routes", token: "join")
        let key = try SecretFile.read(orchestrator.config.adminKeyFile)
        let app = Application(router: orchestrator.buildRouter())
        try await app.test(.router) { client in try await body(orchestrator, AuthorizedClient(client: client, key: key)) }
    }

    /// The test client, sending the orchestrator's admin key unless told otherwise.
    struct AuthorizedClient {
        let client: any TestClientProtocol
        let key: String?

        func execute<Return>(
            uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil,
            testCallback: @escaping (TestResponse) async throws -> Return = { $0 }
        ) async throws -> Return {
            var headers = headers
            if let key, headers[.authorization] == nil { headers[.authorization] = "Bearer \(key)" }
            return try await client.execute(uri: uri, method: method, headers: headers, body: body, testCallback: testCallback)
        }
    }

    static func error(_ response: TestResponse) throws -> ErrorResponse {
        try JSONDecoder().decode(ErrorResponse.self, from: Data(buffer: response.body))
    }

    static func job(_ name: String) -> String {
        #"{"Job": {"Name": "\#(name)", "Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}, "Publisher": {"Type": "noop"}}]}}"#
    }

    @Test func unknownJobsAndEndpointsAre404WithACodeAndTheRequestID() async throws {
        try await Self.test { _, client in
            try await client.execute(uri: "/api/v1/orchestrator/jobs/j-nope", method: .get) { response in
                #expect(response.status == .notFound)
                let body = try Self.error(response)
                #expect(body.code == "NotFound")
                #expect(body.message.contains("j-nope"))
                #expect(body.requestID?.isEmpty == false)
                #expect(response.headers[.init("X-Request-ID")!] == body.requestID)
            }
            try await client.execute(uri: "/api/v1/orchestrator/nothing-here", method: .get) { response in
                #expect(response.status == .notFound)
                let message = try Self.error(response).message
                #expect(message.contains("no such endpoint"))
            }
        }
    }

    @Test func aMalformedJobIs400WithTheFieldPath() async throws {
        try await Self.test { _, client in
            let bad = ByteBuffer(string: #"{"Job": {"Name": "n", "Count": "three"}}"#)
            try await client.execute(uri: "/api/v1/orchestrator/jobs", method: .put, body: bad) { response in
                #expect(response.status == .badRequest)
                let body = try Self.error(response)
                #expect(body.code == "InvalidJobSpec")
                #expect(body.message.contains("Job.Count"))
            }
            try await client.execute(uri: "/api/v1/orchestrator/jobs", method: .put, body: ByteBuffer(string: "{not json")) { response in
                #expect(response.status == .badRequest)
            }
        }
    }

    /// `VersionCreateTime` is the store's: a spec that sets it (to push its own timeouts out of
    /// reach) is stored without it.
    @Test func aSubmittedVersionStartIsIgnored() async throws {
        try await Self.test { orchestrator, client in
            let spec = #"{"Job": {"Name": "late", "Type": "batch", "VersionCreateTime": 9223372036854775807, "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}, "Publisher": {"Type": "noop"}, "Timeouts": {"TotalTimeout": 60}}]}}"#
            var id = ""
            try await client.execute(uri: "/api/v1/orchestrator/jobs", method: .put, body: ByteBuffer(string: spec)) { response in
                #expect(response.status == .ok)
                id = try JSONDecoder().decode(PutJobResponse.self, from: Data(buffer: response.body)).jobID
            }
            let stored = try #require(try await orchestrator.database.job(id: id))
            #expect(stored.versionCreateTime == 0)
        }
    }

    @Test func jobListsPageWithATokenAndSubmissionIsPutOrPost() async throws {
        try await Self.test { orchestrator, client in
            for (index, method) in [HTTPRequest.Method.put, .post, .put].enumerated() {
                try await client.execute(uri: "/api/v1/orchestrator/jobs", method: method, body: ByteBuffer(string: Self.job("j\(index)"))) { response in
                    #expect(response.status == .ok)
                }
            }
            var token = ""
            try await client.execute(uri: "/api/v1/orchestrator/jobs?limit=2", method: .get) { response in
                let page = try JSONDecoder().decode(ListResponse<Job>.self, from: Data(buffer: response.body))
                #expect(page.items.count == 2)
                token = page.nextToken
            }
            #expect(!token.isEmpty)
            try await client.execute(uri: "/api/v1/orchestrator/jobs?limit=2&next_token=\(token)", method: .get) { response in
                let page = try JSONDecoder().decode(ListResponse<Job>.self, from: Data(buffer: response.body))
                #expect(page.items.count == 1)
                #expect(page.nextToken.isEmpty)
            }
            // A token that is not one reads as the start, never as an error.
            #expect(Paging.decodeToken("%%%") == 0)
            #expect(try await orchestrator.database.listJobs(namespaces: nil, limit: 10, offset: 0, newestFirst: true).0.count == 3)
        }
    }

    @Test func nodeActionsApproveRejectAndRefuseUnknownNodes() async throws {
        try await Self.test { orchestrator, client in
            let info = NodeInfo(nodeID: "n-worker", computeNodeInfo: ComputeNodeInfo(executionEngines: ["noop"], publishers: ["noop"]))
            _ = try await orchestrator.database.handshake(info: info, session: "s", lastOrchestratorSeq: 0, activeExecutions: [], now: 1)
            try await client.execute(uri: "/api/v1/orchestrator/nodes/n-nobody", method: .put, body: ByteBuffer(string: #"{"Action": "approve"}"#)) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/api/v1/orchestrator/nodes/n-work", method: .put, body: ByteBuffer(string: #"{"Action": "explode"}"#)) { response in
                #expect(response.status == .badRequest)
                let message = try Self.error(response).message
                #expect(message.contains("approve, reject, release or delete"))
            }
            try await client.execute(uri: "/api/v1/orchestrator/nodes", method: .post, body: ByteBuffer(string: #"{"NodeID": "n-work", "Action": "reject"}"#)) { response in
                #expect(response.status == .ok)
            }
            #expect(try await orchestrator.database.nodes().first?.membership == .rejected)
            try await client.execute(uri: "/api/v1/orchestrator/nodes/n-worker", method: .get) { response in
                let node = try JSONDecoder().decode(GetNodeResponse.self, from: Data(buffer: response.body))
                #expect(node.node.membership == .rejected)
            }
        }
    }

    /// Compute routes take a request signed by an enrolled node's key: not the join token,
    /// not another key, not a signature for another target or from long ago.
    @Test func computeRoutesNeedASignedRequestAndTheAssignedNode() async throws {
        try await Self.test { orchestrator, client in
            let key = Curve25519.Signing.PrivateKey()
            let nodeID = NodeIdentity.nodeID(publicKey: key.publicKey)
            _ = try await orchestrator.database.enroll(nodeID: nodeID, publicKey: NodeIdentity.encode(key.publicKey), now: 1)
            func signed(_ target: String, by signer: Curve25519.Signing.PrivateKey = key, at time: Int64 = Int64(Date().timeIntervalSince1970)) throws -> HTTPFields {
                let signature = try signer.signature(
                    for: NodeIdentity.requestPayload(method: "PUT", target: target, nodeID: nodeID, time: time)).base64EncodedString()
                return [.authorization: "CodNode \(nodeID):\(time):\(signature)"]
            }
            let target = "/api/v1/compute/results/e-1"
            let refused: [HTTPFields] = [
                [:], [.authorization: "Bearer join", .init("X-Cod-Node-ID")!: nodeID],
                try signed(target, by: Curve25519.Signing.PrivateKey()), try signed("/api/v1/compute/results/e-2"),
                try signed(target, at: Int64(Date().timeIntervalSince1970) - 3600),
                // Malformed: no parts, a time that is not a number, a huge signature, an unknown node.
                [.authorization: "CodNode"], [.authorization: "CodNode \(nodeID):soon:c2ln"],
                [.authorization: "CodNode \(nodeID):\(Int64(Date().timeIntervalSince1970)):" + String(repeating: "A", count: 100_000)],
                [.authorization: "CodNode n-unknown:\(Int64(Date().timeIntervalSince1970)):c2ln"],
            ]
            for headers in refused {
                try await client.execute(uri: target, method: .put, headers: headers, body: ByteBuffer(string: "x")) { response in
                    #expect(response.status == .unauthorized, "\(headers)")
                }
            }
            try await client.execute(uri: target, method: .put, headers: try signed(target), body: ByteBuffer(string: "x")) { response in
                #expect(response.status == .notFound)
                let message = try Self.error(response).message
                #expect(message.contains("not assigned to this node"))
            }
        }
    }

    @Test func datasetsAndResultsAnswerWithoutWriting() async throws {
        try await Self.test { _, client in
            try await client.execute(uri: "/api/v1/orchestrator/datasets", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/v1/orchestrator/datasets/bafynothing", method: .get) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/api/v1/orchestrator/results/e-unknown", method: .get) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/api/v1/orchestrator/results/..%2Fetc", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }
}

extension Orchestrator {
    /// An orchestrator over a fresh data folder, not serving: for driving its services and routes.
    static func inScratchFolder(_ prefix: String, token: String = "t") throws -> Orchestrator {
        let directory = try Paths.temporaryDirectory(prefix)
        return try Orchestrator(config: OrchestratorConfig(dataDirectory: directory, token: token), logger: Logger(label: "test"))
    }
}
