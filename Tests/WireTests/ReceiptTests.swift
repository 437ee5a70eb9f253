import Crypto
import Foundation
import Models
import Testing
@testable import Wire

/// Receipts as DSSE envelopes: a fixed key and receipt give a fixed signature (Ed25519 is
/// deterministic), the same one Python's `cryptography` makes over the same PAE, and any change
/// to payload, type or signature fails verification.
@Suite("Signed receipts")
struct ReceiptTests {
    /// RFC 8032's first test key (the seed 9d61b19d…).
    static let seed = Data((0..<32).map { UInt8(["9d", "61", "b1", "9d", "ef", "fd", "5a", "60", "ba", "84", "4a", "f4", "92", "ec", "2c", "c4",
                                                 "44", "49", "c5", "69", "7b", "32", "69", "19", "70", "3b", "ac", "03", "1c", "ae", "7f", "60"][$0], radix: 16)! })
    static var key: Curve25519.Signing.PrivateKey { try! Curve25519.Signing.PrivateKey(rawRepresentation: seed) }
    static var publicKey: String { NodeIdentity.encode(key.publicKey) }

    static let receipt = ExecutionReceipt(
        executionID: "e-00000000-0000-0000-0000-000000000001", jobID: "j-00000000-0000-0000-0000-000000000001", jobVersion: 1,
        partitionIndex: 0, nodeID: "n-fixed", ran: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
        inputs: [.init(target: "/inputs", cid: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi")],
        engine: .init(type: "wasm", artifact: "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"),
        out: .init(state: "Completed", exitCode: 0, resultCID: "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", error: nil),
        usage: .init(wallSeconds: 1.25, bytesReadLocally: 4096, bytesReadOverNetwork: 0),
        startedAt: "2026-12-01T10:00:00Z", finishedAt: "2026-12-01T10:00:01.25Z", prev: "")

    static func sign(_ data: Data) throws -> String { try key.signature(for: data).base64EncodedString() }

    @Test func theSignatureIsFixedAndMatchesPython() throws {
        let payload = try Self.receipt.payload()
        let envelope = try DSSEEnvelope.sign(payload: payload, type: ExecutionReceipt.payloadType, keyid: "n-fixed", sign: Self.sign)
        let pae = DSSEEnvelope.pae(type: ExecutionReceipt.payloadType, body: payload)
        #expect(pae.starts(with: Data("DSSEv1 35 application/vnd.cod.receipt.v1+json \(payload.count) ".utf8)))
        // Deterministic: the same key and bytes sign the same way every time.
        let again = try DSSEEnvelope.sign(payload: payload, type: ExecutionReceipt.payloadType, keyid: "n-fixed", sign: Self.sign)
        #expect(envelope == again)
        // The golden vector: this key, this receipt, this signature, in every version of Cod.
        #expect(payload.count == 727)
        #expect(envelope.signatures[0].sig == "41mdInkY8rX3WUXO0ucRLxcrHrDIhyoXSWXW0KkXCAPQQSH3M40pPSAzhbxrXnp9nQrscBqUmeCdxu/6Q+DSCA==")
        #expect(try envelope.verifiedPayload(key: Self.publicKey) == payload)

        // Another implementation, over the same PAE bytes, signs the same.
        let script = """
            import sys, base64
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
            key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sys.argv[1]))
            print(base64.b64encode(key.sign(sys.stdin.buffer.read())).decode())
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, Self.seed.map { String(format: "%02x", $0) }.joined()]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(pae)
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        let python = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(process.terminationStatus == 0, "\(String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
        #expect(python == envelope.signatures.first?.sig)
    }

    @Test func flippingAnyByteOfPayloadTypeOrSignatureFails() throws {
        let payload = try Self.receipt.payload()
        let envelope = try DSSEEnvelope.sign(payload: payload, type: ExecutionReceipt.payloadType, keyid: "n-fixed", sign: Self.sign)
        for index in payload.indices {
            var changed = payload
            changed[index] ^= 0x01
            var tampered = envelope
            tampered.payload = changed.base64EncodedString()
            #expect(throws: DSSEEnvelope.Failure.self) { try tampered.verifiedPayload(key: Self.publicKey) }
        }
        let type = Array(ExecutionReceipt.payloadType.utf8)
        for index in type.indices {
            var changed = type
            changed[index] ^= 0x01
            var tampered = envelope
            tampered.payloadType = String(decoding: changed, as: UTF8.self)
            #expect(throws: DSSEEnvelope.Failure.self) { try tampered.verifiedPayload(key: Self.publicKey) }
        }
        let signature = try #require(Data(base64Encoded: envelope.signatures[0].sig))
        for index in signature.indices {
            var changed = signature
            changed[index] ^= 0x01
            var tampered = envelope
            tampered.signatures[0].sig = changed.base64EncodedString()
            #expect(throws: DSSEEnvelope.Failure.self) { try tampered.verifiedPayload(key: Self.publicKey) }
        }
        // Another key does not verify it either.
        let other = NodeIdentity.encode(Curve25519.Signing.PrivateKey().publicKey)
        #expect(throws: DSSEEnvelope.Failure.self) { try envelope.verifiedPayload(key: other) }
        // The stored bytes read back as the same envelope.
        #expect(try DSSEEnvelope.decode(try envelope.encoded()) == envelope)
        #expect(throws: DSSEEnvelope.Failure.self) { try DSSEEnvelope.decode(Data(repeating: 0x7b, count: (1 << 20) + 1)) }
    }
}
