import ContentAddressing
import Crypto
import Foundation
import _CryptoExtras

/// The deterministic inputs of the IPFS reference vectors.
enum Generators {
    /// Byte i = i mod 251.
    static func pattern(_ count: Int) -> [UInt8] {
        let cycle = (0..<251).map { UInt8($0) }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count + 251 <= count { out.append(contentsOf: cycle) }
        out.append(contentsOf: cycle.prefix(count - out.count))
        return out
    }

    /// IETF ChaCha20 keystream: key SHA-256(seed), zero nonce, counter from 0 (kubo's
    /// `random_deterministic.go`).
    static func chacha(seed: String, count: Int) throws -> [UInt8] {
        let key = SymmetricKey(data: SHA256.hash(data: Data(seed.utf8)))
        let zeros = Data(count: count)
        let stream = try Insecure.ChaCha20CTR.encrypt(
            zeros, using: key, counter: Insecure.ChaCha20CTR.Counter(), nonce: Insecure.ChaCha20CTR.Nonce(data: Data(count: 12)))
        return Array(stream)
    }

    /// kubo's deterministic file names: keystream bytes mapped onto a 39-character alphabet.
    static func chachaNames(seed: String, count: Int, length: (Int) -> Int) throws -> [String] {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz01234567890-_")
        let stream = try chacha(seed: seed, count: 1 << 20)
        var offset = 0
        var names: [String] = []
        for index in 0..<count {
            let size = length(index)
            names.append(String(stream[offset..<offset + size].map { alphabet[Int($0) % 39] }))
            offset += size
        }
        return names
    }
}

/// A tree to import: files by content, folders by entries.
indirect enum Tree {
    case file([UInt8])
    case directory([String: Tree])

    static func text(_ string: String) -> Tree { .file(Array(string.utf8)) }

    /// Imports the tree and returns the root, collecting blocks.
    func importTree(_ options: ImportOptions, blocks: BlockCollector = BlockCollector()) throws -> ImportedNode {
        switch self {
        case .file(let bytes):
            return try FileImporter.importBytes(bytes, options: options, sink: blocks.put)
        case .directory(let entries):
            let children = try entries.map { DirectoryEntry(name: $0.key, node: try $0.value.importTree(options, blocks: blocks)) }
            return try DirectoryBuilder.build(children, options: options, sink: blocks.put)
        }
    }
}

/// Collects blocks in the order they are made.
final class BlockCollector: @unchecked Sendable {
    var blocks: [CID: [UInt8]] = [:]
    var order: [CID] = []

    func put(_ cid: CID, _ bytes: [UInt8]) {
        if blocks[cid] == nil { order.append(cid) }
        blocks[cid] = bytes
    }
}

extension Array where Element == UInt8 {
    init(hex: String) {
        let chars = Array(hex.utf8)
        self = stride(from: 0, to: chars.count, by: 2).map {
            UInt8(String(decoding: chars[$0..<$0 + 2], as: UTF8.self), radix: 16)!
        }
    }

    var hex: String { map { String(format: "%02x", $0) }.joined() }
}
