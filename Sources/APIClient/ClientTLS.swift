import Foundation
public import Models
import NIOCore
import NIOTLS
import NIOPosix
public import NIOSSL
import Wire

/// Which server certificates a client trusts over `https://`.
public enum ClientTLS: Sendable, Hashable {
    /// The system's roots: a certificate from a public or the machine's own authority.
    case systemRoots
    /// The certificates in a PEM file: the server's own (self-signed) certificate or the
    /// authority that issued it. The name in the URL must be one the certificate covers.
    case authority(file: String)
    /// Exactly one self-signed certificate, named by its SHA-256 fingerprint (64 hex digits,
    /// as `CertificateFingerprint.normalize` gives them). The name in the URL is not checked:
    /// only a server holding that certificate's key gets through.
    case fingerprint(String)

    /// The policy `--tls-ca` / `--tls-fingerprint` (or their environment variables) ask for,
    /// checked; nil when neither is given.
    public static func from(authorityFile: String?, fingerprint: String?) throws -> ClientTLS? {
        if let fingerprint, !fingerprint.isEmpty {
            guard let digits = CertificateFingerprint.normalize(fingerprint) else {
                throw CodError(
                    .badRequest, "the TLS fingerprint \(fingerprint.prefix(120)) is not a SHA-256 fingerprint",
                    hint: "give the 64 hex digits `cod serve --tls-self-signed` printed, e.g. SHA256:3F:A0:...")
            }
            return .fingerprint(digits)
        }
        if let authorityFile, !authorityFile.isEmpty {
            guard FileManager.default.isReadableFile(atPath: authorityFile) else {
                throw CodError(.badRequest, "cannot read the TLS authority file \(authorityFile)", hint: "give a PEM certificate file")
            }
            return .authority(file: authorityFile)
        }
        return nil
    }
}

/// Turns a `ClientTLS` into a configuration, once per server: a pinned fingerprint is checked
/// by a first handshake that fetches the certificate the server shows, which then becomes the
/// only root that client trusts.
public actor TLSTrust {
    public static let shared = TLSTrust()
    private var resolved: [String: TLSConfiguration] = [:]

    public init() {}

    /// The configuration for requests to `baseURL` (`https://HOST:PORT`) under `policy`.
    public func configuration(for policy: ClientTLS, baseURL: String) async throws -> TLSConfiguration {
        let (host, port) = Self.hostAndPort(baseURL)
        let key = "\(policy)|\(host):\(port)"
        if let configuration = resolved[key] { return configuration }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        switch policy {
        case .systemRoots:
            break
        case .authority(let file):
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
            } catch {
                throw CodError(.badRequest, "cannot read the TLS authority file \(file): \(error)", hint: "give a PEM certificate file")
            }
        case .fingerprint(let expected):
            let leaf = try await Self.presentedCertificate(host: host, port: port)
            let presented = CertificateFingerprint.of(der: try leaf.toDERBytes())
            guard CertificateFingerprint.normalize(presented) == expected else {
                throw CodError(
                    .tlsFingerprintMismatch,
                    "the server at \(host):\(port) shows a certificate with fingerprint \(presented), not the one given (\(expected.prefix(16))...)",
                    hint: "check the fingerprint the server printed at start; a different one may mean someone is in between")
            }
            configuration.trustRoots = .certificates([leaf])
            configuration.certificateVerification = .noHostnameVerification
        }
        resolved[key] = configuration
        return configuration
    }

    /// The configuration for a WebSocket to `baseURL`, and the name to send in the handshake.
    /// A WebSocket client sends its host as the server name, which TLS forbids for an IP
    /// address; there the name is not checked on the WebSocket itself. What is checked is the
    /// chain, the full check of the HTTPS requests a node makes before each connection, and
    /// the orchestrator's signed welcome, which only the orchestrator the node enrolled with
    /// can give.
    public func webSocketConfiguration(for policy: ClientTLS, baseURL: String) async throws -> (TLSConfiguration, serverName: String?) {
        var configuration = try await configuration(for: policy, baseURL: baseURL)
        let (host, _) = Self.hostAndPort(baseURL)
        guard Self.isIPAddress(host) else { return (configuration, nil) }
        if configuration.certificateVerification == .fullVerification { configuration.certificateVerification = .noHostnameVerification }
        return (configuration, "cod-orchestrator")
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }

    static func hostAndPort(_ baseURL: String) -> (String, Int) {
        let components = URLComponents(string: baseURL)
        var host = components?.host ?? "127.0.0.1"
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, components?.port ?? 443)
    }

    /// The leaf certificate the server at `host:port` shows in a handshake. Nothing is sent
    /// over the connection: it is closed once the certificate is seen.
    static func presentedCertificate(host: String, port: Int) async throws -> NIOSSLCertificate {
        // Nothing is trusted from this connection but the certificate itself, which is
        // compared with the pinned fingerprint before anything is sent to the server.
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        let context = try NIOSSLContext(configuration: configuration)
        let group = MultiThreadedEventLoopGroup.singleton
        let handshake = group.next().makePromise(of: Void.self)
        let leaf: NIOSSLCertificate?
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(5))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                        try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(done: handshake))
                    }
                }
                .connect(host: host, port: port).get()
            let deadline = channel.eventLoop.scheduleTask(in: .seconds(10)) {
                handshake.fail(CodError(.timeout, "the server at \(host):\(port) did not finish a TLS handshake in 10 s"))
            }
            defer {
                deadline.cancel()
                channel.close(promise: nil)
            }
            try await handshake.futureResult.get()
            leaf = try await channel.nioSSL_peerCertificate().get()
        } catch let error as CodError {
            throw error
        } catch {
            handshake.fail(error)
            if let failure = CodClient.tlsFailure(error, baseURL: "https://\(host):\(port)") { throw failure }
            throw CodError(
                .unavailable, "cannot fetch the TLS certificate of \(host):\(port): \(CodClient.describe(error))",
                hint: "is the server up, and does it speak TLS (cod serve --tls-self-signed)?")
        }
        guard let leaf else {
            throw CodError(.unavailable, "the server at \(host):\(port) showed no certificate")
        }
        return leaf
    }
}

/// Completes `done` when the TLS handshake does, or fails it with the connection's error.
private final class HandshakeWatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let done: EventLoopPromise<Void>

    init(done: EventLoopPromise<Void>) { self.done = done }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { done.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(CodError(.unavailable, "the server closed the connection during the TLS handshake"))
        context.fireChannelInactive()
    }
}
