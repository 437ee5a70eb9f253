import Crypto
import Foundation
public import HummingbirdCore
public import Logging
public import NIOCore
public import NIOSSL
import SafeFS
import SwiftASN1
import Wire
import X509

/// The certificate and key a server speaks TLS with.
public struct ServerTLS: Sendable {
    public let certificateChain: [NIOSSLCertificate]
    public let privateKey: NIOSSLPrivateKey
    /// The leaf's SHA-256 fingerprint, what clients pin with `--tls-fingerprint`.
    public let fingerprint: String

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Loads a PEM certificate chain (leaf first) and its PEM private key.
    public init(certificateFile: String, keyFile: String) throws {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        } catch {
            throw Failure(description: "cannot read the TLS certificate in \(certificateFile): \(error) (a PEM file, leaf certificate first)")
        }
        guard let leaf = chain.first else {
            throw Failure(description: "\(certificateFile) holds no PEM certificate")
        }
        do {
            privateKey = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw Failure(description: "cannot read the TLS private key in \(keyFile): \(error) (an unencrypted PEM key)")
        }
        certificateChain = chain
        fingerprint = CertificateFingerprint.of(der: try leaf.toDERBytes())
        // A key that does not match the certificate fails here, at start, not at the first client.
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw Failure(description: "the key in \(keyFile) does not go with the certificate in \(certificateFile): \(error)")
        }
    }

    /// The server configuration: TLS 1.2 or later, no client certificates asked for.
    public var configuration: TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificateChain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    /// The self-signed certificate kept in `folder` (`cert.pem`, and `key.pem` 0600 from
    /// creation), made on first use for `hosts` (names and IP addresses) and reused after, so
    /// clients that pinned its fingerprint keep working across restarts.
    public static func selfSigned(in folder: URL, hosts: [String], now: Date = Date()) throws -> ServerTLS {
        let certificateFile = folder.appendingPathComponent("cert.pem")
        let keyFile = folder.appendingPathComponent("key.pem")
        if !FileManager.default.fileExists(atPath: certificateFile.path) || !FileManager.default.fileExists(atPath: keyFile.path) {
            let key = P256.Signing.PrivateKey()
            let pem = try makeCertificate(key: key, hosts: hosts, now: now)
            // The key first: a certificate is never left without its key.
            try SecretFile.write(key.pemRepresentation, to: keyFile)
            try Data(pem.utf8).write(to: certificateFile, options: .atomic)
        }
        return try ServerTLS(certificateFile: certificateFile.path, keyFile: keyFile.path)
    }

    /// A self-signed certificate for `hosts`, valid ten years. It is its own authority (so a
    /// client can trust it as a root with `--tls-ca`) and allowed for nothing but serving TLS
    /// and signing itself.
    static func makeCertificate(key: P256.Signing.PrivateKey, hosts: [String], now: Date) throws -> String {
        let name = try DistinguishedName {
            OrganizationName("Cod")
            CommonName(hosts.first ?? "localhost")
        }
        var names: [GeneralName] = []
        for host in Set(hosts + ["localhost", "127.0.0.1", "::1"]).sorted() where !host.isEmpty && host != "0.0.0.0" && host != "::" {
            if let address = ipAddressBytes(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(address))))
            } else {
                names.append(.dnsName(host))
            }
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 10 * 365 * 86400, issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: .init(key))
        return try certificate.serializeAsPEM().pemString
    }

    /// The 4 or 16 bytes of an IP address literal; nil for a name.
    static func ipAddressBytes(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// The names a self-signed certificate covers for a server listening on `host`: that host
    /// when it names one address, and this machine's name.
    public static func certificateHosts(listeningOn host: String) -> [String] {
        var hosts = [ProcessInfo.processInfo.hostName]
        if host != "0.0.0.0" && host != "::" { hosts.insert(host, at: 0) }
        return hosts
    }
}

/// Serves `Inner` over TLS. A client that speaks plain HTTP to this port gets a plain-text
/// 400 that tells it to use `https://` instead of a connection closed without a word.
public struct TLSGateChannel<Inner: ServerChildChannel>: ServerChildChannel {
    public typealias Value = Inner.Value
    let inner: Inner
    let context: NIOSSLContext

    public init(_ inner: Inner, tls: ServerTLS) throws {
        self.inner = inner
        self.context = try NIOSSLContext(configuration: tls.configuration)
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let context = self.context
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(PlaintextOnTLSPort())
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        }.flatMap { self.inner.setup(channel: channel, logger: logger) }
    }

    public func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Looks at a connection's first byte: a TLS handshake record (22) passes on, and the
/// handler leaves; anything else is answered in plain text and closed.
final class PlaintextOnTLSPort: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let handshakeRecord: UInt8 = 22
    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        let buffer = unwrapInboundIn(data)
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
        if first == Self.handshakeRecord {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        refused = true
        let body = Self.refusalBody
        let head = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: head + body))).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
    }

    static let refusalBody: String = {
        let response = ErrorResponse(
            message: "this port speaks TLS (HTTPS): the request was sent in plain HTTP", code: "TLSRequired", status: 400,
            hint: "use https:// (the CLI: --tls, --tls-ca FILE or --tls-fingerprint SHA256:...)")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(response)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }()
}
