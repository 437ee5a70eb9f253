import ContentAddressing
import Foundation
import Testing

@Suite("Varints, multibase, CIDs, dag-pb, UnixFS, CAR")
struct FormatTests {
    @Test func varints() throws {
        for value: UInt64 in [0, 1, 127, 128, 255, 300, 16384, 1 << 35, UInt64(Int64.max)] {
            var offset = 0
            let bytes = Varint.encode(value)
            #expect(bytes.count == Varint.size(value))
            #expect(try Varint.decode(bytes, at: &offset) == value)
            #expect(offset == bytes.count)
        }
        #expect(Varint.encode(300) == [0xac, 0x02])
        var offset = 0
        #expect(throws: ContentError.self) { try Varint.decode([0x80], at: &offset) }  // truncated
        offset = 0
        #expect(throws: ContentError.self) { try Varint.decode([0x81, 0x00], at: &offset) }  // not minimal
        offset = 0
        #expect(throws: ContentError.self) { try Varint.decode([UInt8](repeating: 0xff, count: 11), at: &offset) }
    }

    @Test func cidStrings() throws {
        let v0 = try CID("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")
        #expect(v0.version == 0)
        #expect(v0.codec == CID.dagPB)
        #expect(v0.toV1.description == "bafybeicg2rebjoofv4kbyovkw7af3rpiitvnl6i7ckcywaq6xjcxnc2mby")
        let v1 = try CID("bafybeicg2rebjoofv4kbyovkw7af3rpiitvnl6i7ckcywaq6xjcxnc2mby")
        #expect(v1.toV0 == v0)
        #expect(v0.bytes.count == 34)
        #expect(v1.bytes.count == 36)
        for base in Multibase.allCases {
            let text = v1.string(base: base)
            #expect(try CID(text) == v1, "\(base)")
        }
        #expect(try CID("BAFYBEICG2REBJOOFV4KBYOVKW7AF3RPIITVNL6I7CKCYWAQ6XJCXNC2MBY".lowercased()) == v1)
        let raw = try CID("bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4")
        #expect(raw.codec == CID.raw)
        #expect(raw.toV0 == nil)
    }

    @Test(arguments: ["", "Qm", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5O", "xyz", "bafy!!", "bafybei",
                      "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz0"])
    func badCIDsAreRejected(text: String) {
        #expect(throws: ContentError.self) { try CID(text) }
    }

    @Test func goldenLeafBlocks() throws {
        let collector = BlockCollector()
        let empty = try FileImporter.importBytes([], options: .kuboDefault, sink: collector.put)
        #expect(collector.blocks[empty.cid] == [0x0a, 0x04, 0x08, 0x02, 0x18, 0x00])
        let hello = try FileImporter.importBytes(Array("hello world\n".utf8), options: .kuboDefault, sink: collector.put)
        #expect(collector.blocks[hello.cid]?.hex == "0a1208021" + "20c68656c6c6f20776f726c640a180c")
        let dir = try Tree.directory([:]).importTree(.kuboDefault, blocks: collector)
        #expect(collector.blocks[dir.cid] == [0x0a, 0x02, 0x08, 0x01])
    }

    @Test func goldenInternalBlocks() throws {
        let v0 = BlockCollector()
        let root0 = try FileImporter.importBytes(Generators.pattern(262_145), options: .kuboDefault, sink: v0.put)
        #expect(v0.blocks[root0.cid]?.hex == "122a0a221220f529a685dcff99c05fbbb96250894863e4ac303b702ae783b3dabeabba0700921200188e801012280a221220394f163d9609823047884bdb19fd3f4f15b717da241aa92391b21261c3515f04120018090a0c080218818010208080102001")
        let v1 = BlockCollector()
        let root1 = try FileImporter.importBytes(Generators.pattern(262_145), options: .cidV1, sink: v1.put)
        #expect(v1.blocks[root1.cid]?.hex == "122c0a240155122031a1f9dea0169551092d05e8bf4a446228c8c3eb4c9b713c66adcb7fd53c89be120018808010122a0a240155122018ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4120018010a0c080218818010208080102001")
        let dirs = BlockCollector()
        let planets = try VectorTests.planets.importTree(.kuboDefault, blocks: dirs)
        #expect(dirs.blocks[planets.cid]?.hex == "12300a221220169834d98d92c6b808bb7db6cee6657c02bf2ac77247d7f312558709132f182712086d6172732e747874181412310a22122055554f2d163fee1a40cc6983ccce1b4517b600c02cc4a8fb3d824af86bfd998b120976656e75732e74787418150a020801")
        #expect(planets.tsize == 146)
    }

    @Test func dagPBRoundTripsAndRejectsGarbage() throws {
        let cid = try CID("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")
        let node = PBNode(links: [PBLink(hash: cid, name: "a", tsize: 20), PBLink(hash: cid, name: nil, tsize: nil)], data: [1, 2, 3])
        #expect(try PBNode.decode(node.encode()) == node)
        // Data before Links decodes too.
        let dataFirst: [UInt8] = [0x0a, 0x01, 0x07] + Array(PBNode(links: [PBLink(hash: cid, name: "x", tsize: 1)], data: nil).encode())
        #expect(try PBNode.decode(dataFirst).data == [7])
        #expect(throws: ContentError.self) { try PBNode.decode([0x0a, 0x05, 0x01]) }  // truncated data
        #expect(throws: ContentError.self) { try PBNode.decode([0x1a, 0x00]) }  // unknown field
        #expect(throws: ContentError.self) { try PBNode.decode([0x12, 0x02, 0x12, 0x00]) }  // link without hash
        #expect(throws: ContentError.self) { try UnixFSData.decode([0x08, 0x09]) }  // unknown type
        let unixfs = UnixFSData(kind: .file, data: [9], fileSize: 1, blockSizes: [1, 2])
        #expect(try UnixFSData.decode(unixfs.encode()) == unixfs)
    }

    @Test func murmur3CheckValue() {
        #expect(HAMTBuilder.hashBytes(Array("hello".utf8)).hex == "cbd8a7b341bd9b02")
    }

    @Test func goldenCARs() throws {
        for (options, expected) in [
            (ImportOptions.kuboDefault, "38a265726f6f747381d82a582300122046d44814b9c5af141c3aaab7c05dc5e844ead5f91f12858b021eba45768b4c0e6776657273696f6e0136122046d44814b9c5af141c3aaab7c05dc5e844ead5f91f12858b021eba45768b4c0e0a120802120c68656c6c6f20776f726c640a180c"),
            (ImportOptions.cidV1, "3aa265726f6f747381d82a58250001551220a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a4476776657273696f6e013001551220a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a44768656c6c6f20776f726c640a"),
        ] {
            let blocks = BlockCollector()
            let root = try FileImporter.importBytes(Array("hello world\n".utf8), options: options, sink: blocks.put)
            let car = CAR.header(roots: [root.cid]) + CAR.section(cid: root.cid, block: blocks.blocks[root.cid]!)
            #expect(car.hex == expected)
            let archive = try CAR.read(car)
            #expect(archive.roots == [root.cid])
            #expect(archive.blocks.count == 1)
        }
    }

    @Test func corruptCARsAreRejected() throws {
        let blocks = BlockCollector()
        let root = try FileImporter.importBytes(Array("hello world\n".utf8), options: .kuboDefault, sink: blocks.put)
        let car = CAR.header(roots: [root.cid]) + CAR.section(cid: root.cid, block: blocks.blocks[root.cid]!)
        var flipped = car
        flipped[flipped.count - 3] ^= 0x01
        #expect(throws: ContentError.self) { try CAR.read(flipped) }  // block does not match its CID
        #expect(throws: ContentError.self) { try CAR.read(Array(car.prefix(car.count - 5))) }  // truncated section
        #expect(throws: ContentError.self) { try CAR.read(Array(car.prefix(20))) }  // truncated header
        #expect(throws: ContentError.self) { try CAR.read([0x05, 0xa1, 0x61, 0x78, 0x01, 0x02]) }  // no roots
        #expect(throws: ContentError.self) { try CAR.read([]) }
        // A section whose CID names an unknown hash function cannot be verified.
        let odd = CID(v1: CID.raw, multihash: Multihash(code: 0x99, digest: [1, 2]))
        #expect(throws: ContentError.self) { try CAR.read(CAR.header(roots: [odd]) + CAR.section(cid: odd, block: [1])) }
    }

    /// A seeded mutator over the decoders: no input may crash or hang them.
    @Test func decodersSurviveMutation() throws {
        let blocks = BlockCollector()
        let root = try Tree.directory(["a.txt": .text("alpha\n"), "b": .directory(["c": .file(Generators.pattern(3000))])])
            .importTree(ImportOptions(cidVersion: 1, chunkSize: 1000), blocks: blocks)
        var car = CAR.header(roots: [root.cid])
        for cid in blocks.order { car += CAR.section(cid: cid, block: blocks.blocks[cid]!) }
        let seeds: [[UInt8]] = [car] + blocks.order.map { blocks.blocks[$0]! } + [root.cid.bytes]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        for _ in 0..<20_000 {
            var input = seeds[Int(next() % UInt64(seeds.count))]
            for _ in 0..<Int(next() % 4 + 1) where !input.isEmpty {
                let position = Int(next() % UInt64(input.count))
                switch next() % 4 {
                case 0: input[position] = UInt8(truncatingIfNeeded: next())
                case 1: input.remove(at: position)
                case 2: input.insert(UInt8(truncatingIfNeeded: next()), at: position)
                default: input = Array(input.prefix(position))
                }
            }
            _ = try? CAR.read(input)
            _ = try? PBNode.decode(input)
            _ = try? UnixFSData.decode(input)
            _ = try? CID(bytes: input)
            var offset = 0
            _ = try? Varint.decode(input, at: &offset)
        }
    }
}
