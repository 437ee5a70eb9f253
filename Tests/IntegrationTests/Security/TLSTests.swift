@testable import CodTestKit
import Foundation
import Models
import Testing
import Wire

/// An orchestrator serving TLS with a certificate it made itself, compute nodes that pin it
/// or trust it as an authority, and the CLI's whole job flow over https.
@Suite("TLS", .serialized)
struct TLSTests {
    /// The fingerprint the orchestrator's log shows, once it has started.
    static func fingerprint(_ cluster: ServeCluster) async throws -> String {
        let log = cluster.base.appendingPathComponent("orchestrator.log")
        for _ in 0..<300 {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"SHA256:[0-9A-F:]{95}"#, options: .regularExpression), text.contains("listening on https://") {
                return String(text[range])
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("the orchestrator did not show its certificate's fingerprint")
    }

    @Test func theMainJobFlowRunsOverTLSAndAWrongCertificateIsRefused() async throws {
        var cluster = try ServeCluster()
        cluster.scheme = "https"
        let orchestrator = try cluster.orchestrator(["--tls-self-signed"])
        var processes = [orchestrator]
        defer { for process in processes where process.isRunning { process.interrupt() } }
        let fingerprint = try await Self.fingerprint(cluster)
        let tlsFolder = cluster.base.appendingPathComponent("o/orchestrator/tls")
        let certificate = tlsFolder.appendingPathComponent("cert.pem").path

        // The key is the orchestrator's alone; the certificate is public.
        let keyMode = try FileManager.default.attributesOfItem(atPath: tlsFolder.appendingPathComponent("key.pem").path)[.posixPermissions] as? Int
        #expect(keyMode == 0o600)

        // One node pins the fingerprint (by address), one trusts the certificate as an
        // authority (by name, which the certificate covers).
        processes.append(try cluster.compute(0, ["--tls-fingerprint", fingerprint]))
        processes.append(try cluster.compute(1, ["--tls-ca", certificate], orchestratorHost: "localhost"))
        // A node given another fingerprint never joins, and says why.
        let wrong = "SHA256:" + Array(repeating: "AB", count: 32).joined(separator: ":")
        processes.append(try cluster.compute(2, ["--tls-fingerprint", wrong, "--log-level", "debug"]))
        cluster.extraEnvironment["COD_TLS_FINGERPRINT"] = fingerprint
        try await cluster.waitForNodes(2)

        // data add, a job that reads it through the nodes' https fetch, logs, job get, data get.
        let input = cluster.base.appendingPathComponent("data.txt")
        try Data("over tls\n".utf8).write(to: input)
        let added = try await cluster.cli("data", "add", input.path)
        #expect(added.status == 0, "\(added.stderr)")
        let cid = try #require(added.stdout.split(separator: " ").dropFirst().first.map(String.init))
        let run = try await cluster.cli("wasm", "run", try Paths.fixture("files"), "-i", "ipfs://\(cid):/inputs/data.txt", "--id-only")
        #expect(run.status == 0, "\(run.stderr)")
        let id = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let ended = try await cluster.waitForEnd(id)
        #expect(ended.job.state.stateType == .completed, "\(ended.job.state.message)")
        let logs = try await cluster.cli("job", "logs", id)
        #expect(logs.stdout.contains("read: over tls"), "\(logs.stdout) \(logs.stderr)")
        let output = cluster.base.appendingPathComponent("results")
        let get = try await cluster.cli("job", "get", id, "--output-dir", output.path)
        #expect(get.status == 0, "\(get.stderr)")
        #expect(try String(contentsOf: output.appendingPathComponent("outputs/upper.txt"), encoding: .utf8) == "OVER TLS\n")
        let fetched = cluster.base.appendingPathComponent("fetched.txt")
        let dataGet = try await cluster.cli("data", "get", cid, "-o", fetched.path)
        #expect(dataGet.status == 0, "\(dataGet.stderr)")
        #expect(try String(contentsOf: fetched, encoding: .utf8) == "over tls\n")

        // The authority file works for the CLI too.
        let byAuthority = try await Run.async(
            [cluster.cod.path, "job", "describe", id, "--tls-ca", certificate, "--api-host", "localhost"],
            environment: cluster.environment.filter { $0.key != "COD_TLS_FINGERPRINT" }.merging(["COD_API_HOST": "localhost"]) { $1 })
        #expect(byAuthority.status == 0, "\(byAuthority.stderr)")

        // A wrong fingerprint is refused before any request is sent; so is an unknown
        // certificate, and plain HTTP to the TLS port gets a reason, not a closed connection.
        let refused = try await Run.async(
            [cluster.cod.path, "job", "list", "--tls-fingerprint", wrong],
            environment: cluster.environment.filter { $0.key != "COD_TLS_FINGERPRINT" })
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("fingerprint \(fingerprint)"), "\(refused.stderr)")
        let untrusted = try await Run.async(
            [cluster.cod.path, "job", "list", "--tls"], environment: cluster.environment.filter { $0.key != "COD_TLS_FINGERPRINT" })
        #expect(untrusted.status != 0)
        #expect(untrusted.stderr.contains("not one this client trusts"), "\(untrusted.stderr)")
        let plain = try await Run.async(
            [cluster.cod.path, "job", "list"], environment: cluster.environment.filter { $0.key != "COD_TLS_FINGERPRINT" })
        #expect(plain.status != 0)
        #expect(plain.stderr.contains("this port speaks TLS"), "\(plain.stderr)")

        // https:// to a port that speaks plain HTTP (a compute node's own API) says so too.
        let nodes = try await cluster.nodes()
        #expect(nodes.count == 2, "\(nodes.map(\.info.nodeID))")
        let address = try #require(nodes.first?.info.computeNodeInfo.address)
        let nodePort = try #require(address.split(separator: ":").last.map(String.init))
        let notTLS = try await Run.async(
            [cluster.cod.path, "agent", "alive", "--api-port", nodePort, "--tls"], environment: cluster.environment)
        #expect(notTLS.status != 0)
        #expect(notTLS.stderr.contains("does not speak TLS"), "\(notTLS.stderr)")

        let wrongNodeLog = try String(contentsOf: cluster.base.appendingPathComponent("compute2.log"), encoding: .utf8)
        #expect(wrongNodeLog.contains("shows a certificate with fingerprint \(fingerprint)"))
        // The admin key never reaches the log.
        let orchestratorLog = try String(contentsOf: cluster.base.appendingPathComponent("orchestrator.log"), encoding: .utf8)
        let adminKey = try #require(cluster.adminKey)
        #expect(!orchestratorLog.contains(adminKey))
    }

    /// A certificate or key that cannot be used stops the server at start with the file's name,
    /// and a key that belongs to another certificate is caught there too.
    @Test func unusableCertificatesStopTheServerAtStartWithTheReason() async throws {
        let cluster = try ServeCluster()
        let garbage = cluster.base.appendingPathComponent("garbage.pem")
        try Data("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n".utf8).write(to: garbage)
        let serve = [cluster.cod.path, "serve", "--orchestrator", "--port", String(cluster.port)]
        let bad = try await Run.async(serve + ["--data-dir", cluster.base.appendingPathComponent("a").path, "--tls-cert", garbage.path, "--tls-key", garbage.path])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("cannot read the TLS certificate in \(garbage.path)"), "\(bad.stderr)")

        // Two self-signed folders: the first one's certificate with the second one's key.
        for name in ["one", "two"] {
            let maker = try cluster.start(
                Array(serve.dropFirst()) + ["--data-dir", cluster.base.appendingPathComponent(name).path, "--tls-self-signed"], log: "\(name).log")
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: cluster.base.appendingPathComponent("\(name)/orchestrator/tls/cert.pem").path) {
                try await Task.sleep(for: .milliseconds(100))
            }
            maker.interrupt()
            maker.waitUntilExit()
        }
        let mismatched = try await Run.async(serve + [
            "--data-dir", cluster.base.appendingPathComponent("b").path,
            "--tls-cert", cluster.base.appendingPathComponent("one/orchestrator/tls/cert.pem").path,
            "--tls-key", cluster.base.appendingPathComponent("two/orchestrator/tls/key.pem").path,
        ])
        #expect(mismatched.status != 0)
        #expect(mismatched.stderr.contains("does not go with the certificate"), "\(mismatched.stderr)")
        let lonely = try await Run.async(serve + ["--tls-cert", garbage.path])
        #expect(lonely.stderr.contains("--tls-cert and --tls-key go together"), "\(lonely.stderr)")
    }
}
