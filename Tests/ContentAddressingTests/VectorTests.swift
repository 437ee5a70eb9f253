import ContentAddressing
import Foundation
import Testing

/// Vectors from the IPFS reference (§2): kubo and boxo goldens.
@Suite("kubo-compatible import vectors")
struct VectorTests {
    struct FileVector: Sendable, CustomTestStringConvertible {
        var name: String
        var input: @Sendable () throws -> [UInt8]
        var options: ImportOptions
        var cid: String
        var testDescription: String { name }
    }

    static let v1NoRaw = ImportOptions(cidVersion: 1, rawLeaves: false)

    static let files: [FileVector] = [
        .init(name: "empty, v0", input: { [] }, options: .kuboDefault, cid: "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"),
        .init(name: "empty, v1", input: { [] }, options: .cidV1, cid: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
        .init(name: "empty, v1 dag-pb leaves", input: { [] }, options: v1NoRaw, cid: "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y"),
        .init(name: "hello world\\n, v0", input: { Array("hello world\n".utf8) }, options: .kuboDefault, cid: "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"),
        .init(name: "hello world\\n, v1", input: { Array("hello world\n".utf8) }, options: .cidV1, cid: "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"),
        .init(name: "hello world\\n, v1 dag-pb", input: { Array("hello world\n".utf8) }, options: v1NoRaw, cid: "bafybeicg2rebjoofv4kbyovkw7af3rpiitvnl6i7ckcywaq6xjcxnc2mby"),
        .init(name: "hello world, v0", input: { Array("hello world".utf8) }, options: .kuboDefault, cid: "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"),
        .init(name: "hello world, v1", input: { Array("hello world".utf8) }, options: .cidV1, cid: "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"),
        .init(name: "hello world, v1 dag-pb", input: { Array("hello world".utf8) }, options: v1NoRaw, cid: "bafybeihykld7uyxzogax6vgyvag42y7464eywpf55gxi5qpoisibh3c5wa"),
        .init(name: "hello\\n, v1", input: { Array("hello\n".utf8) }, options: .cidV1, cid: "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"),
        .init(name: "Hello Worlds!\\n", input: { Array("Hello Worlds!\n".utf8) }, options: .kuboDefault, cid: "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH"),
        .init(name: "IPFS\\n", input: { Array("IPFS\n".utf8) }, options: .kuboDefault, cid: "QmdFyxZXsFiP4csgfM5uPu99AvFiKH62CSPDw5TP92nr7w"),
        .init(name: "a", input: { Array("a".utf8) }, options: .kuboDefault, cid: "QmfDmsHTywy6L9Ne5RXsj5YumDedfBLMvCvmaxjBoe6w4d"),
        .init(name: "pattern 262143, v0", input: { Generators.pattern(262_143) }, options: .kuboDefault, cid: "QmRfm83kqBpGJbGxJg1en9hpwq8eNnP4E2Dj8K73F4m983"),
        .init(name: "pattern 262143, v1", input: { Generators.pattern(262_143) }, options: .cidV1, cid: "bafkreiagptg6ztonoojy4wflk3wwusl5xt4vcy6uult4wa7oemsjtxhjsu"),
        .init(name: "pattern 262144, v0", input: { Generators.pattern(262_144) }, options: .kuboDefault, cid: "QmeqfRyS3vkku7n6krqC3DgGMex3x2sCpSeKMDmrG13QQq"),
        .init(name: "pattern 262144, v1", input: { Generators.pattern(262_144) }, options: .cidV1, cid: "bafkreibruh455iawsviqslif5c7uurdcfdemh22mtnytyzvnzn75kpejxy"),
        .init(name: "pattern 262145, v0", input: { Generators.pattern(262_145) }, options: .kuboDefault, cid: "QmUSjGawaz4ptvREcMKSMJneWCa5j8dAz2wSAAvHtW2rnB"),
        .init(name: "pattern 262145, v1", input: { Generators.pattern(262_145) }, options: .cidV1, cid: "bafybeiexg2oqkfnj56l7fcmawswqbijt5shq4b5rg6a546uwpkqqzwjioi"),
        .init(name: "pattern 1 MiB, v0", input: { Generators.pattern(1 << 20) }, options: .kuboDefault, cid: "QmXgkY4miMKJBrg8YYke4xw6C2n8WNsUc1GXLhN84k4QM3"),
        .init(name: "pattern 1 MiB, v1", input: { Generators.pattern(1 << 20) }, options: .cidV1, cid: "bafybeiedpcapwld4tkgtzwahfofgn4wex5ryysf4se6hwpmlrsh4ntnrau"),
        .init(name: "pattern 174 leaves, v0", input: { Generators.pattern(45_613_056) }, options: .kuboDefault, cid: "QmXCym15aFeWjAWyPFaAgwVmkuKB7EBsV77Skt54KmxChF"),
        .init(name: "pattern 174 leaves, v1", input: { Generators.pattern(45_613_056) }, options: .cidV1, cid: "bafybeihpe5snhzneq7xs53nivmsopto5lrogo3wjynauqylqeym5a3irbm"),
        .init(name: "pattern 175 leaves, v0", input: { Generators.pattern(45_613_057) }, options: .kuboDefault, cid: "QmTedsTekQQkgACJXb1sPZSW8bLdS9LPMrT7L4YdjNRd4n"),
        .init(name: "pattern 175 leaves, v1", input: { Generators.pattern(45_613_057) }, options: .cidV1, cid: "bafybeib4y7ghw2rq7bracc4xwtxrbzo7cfvagdpte2tmrkgwl6dyard3cm"),
        .init(name: "1 MiB zeros, v0", input: { [UInt8](repeating: 0, count: 1 << 20) }, options: .kuboDefault, cid: "QmVkbauSDEaMP4Tkq6Epm9uW75mWm136n81YH8fGtfwdHU"),
        .init(name: "1 MiB zeros, v1", input: { [UInt8](repeating: 0, count: 1 << 20) }, options: .cidV1, cid: "bafybeiggzq4ryi7hscq5hzvzcnk4urnxt3asp37dhgvnjilf7exskximla"),
        .init(name: "45.9 MB zeros, v0", input: { [UInt8](repeating: 0, count: 45_900_000) }, options: .kuboDefault, cid: "QmRdPboiJQoZ5cdazR9a8vGqdJvWg6M5bfdtUSKNHpuscj"),
        .init(name: "chacha chunk-v0-seed 262144", input: { try Generators.chacha(seed: "chunk-v0-seed", count: 262_144) }, options: .kuboDefault, cid: "QmWmRj3dFDZdb6ABvbmKhEL6TmPbAfBZ1t5BxsEyJrcZhE"),
        .init(name: "chacha chunk-v0-seed 262145", input: { try Generators.chacha(seed: "chunk-v0-seed", count: 262_145) }, options: .kuboDefault, cid: "QmYyLxtzZyW22zpoVAtKANLRHpDjZtNeDjQdJrcQNWoRkJ"),
        .init(name: "chacha v0-seed 174 chunks", input: { try Generators.chacha(seed: "v0-seed", count: 174 * 262_144) }, options: .kuboDefault, cid: "QmUbBALi174SnogsUzLpYbD4xPiBSFANF4iztWCsHbMKh2"),
        .init(name: "chacha v0-seed 174 chunks + 1", input: { try Generators.chacha(seed: "v0-seed", count: 174 * 262_144 + 1) }, options: .kuboDefault, cid: "QmV81WL765sC8DXsRhE5fJv2rwhS4icHRaf3J9Zk5FdRnW"),
        .init(name: "deadbeef x 16 Mi (128 MiB), v0", input: { deadbeef() }, options: .kuboDefault, cid: "QmcYKke22MG2rnu4nPVj8Z3hMPi2wtVMKzqLcJwYRThYif"),
        .init(name: "deadbeef x 16 Mi (128 MiB), v1", input: { deadbeef() }, options: .cidV1, cid: "bafybeiawhayvhrtunmsazigmne75kqyyb2z7oqlvky3abpk4tbkqyzv6iu"),
        .init(name: "chacha hello world 256 MiB, 1024 links", input: { try Generators.chacha(seed: "hello world", count: 268_435_456) },
              options: ImportOptions(maxLinks: 1024), cid: "QmbBftNHWmjSWKLC49dMVrfnY8pjrJYntiAXirFJ7oJrNk"),
        .init(name: "chacha chunk-v1-seed 1 MiB, v1-2025", input: { try Generators.chacha(seed: "chunk-v1-seed", count: 1 << 20) }, options: .unixfsV1_2025, cid: "bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta"),
        .init(name: "chacha v1-2025-seed 1024 x 1 MiB, v1-2025", input: { try Generators.chacha(seed: "v1-2025-seed", count: 1024 << 20) }, options: .unixfsV1_2025, cid: "bafybeihmf37wcuvtx4hpu7he5zl5qaf2ineo2lqlfrapokkm5zzw7zyhvm"),
        .init(name: "chacha v1-2025-seed 1024 x 1 MiB + 1, v1-2025", input: { try Generators.chacha(seed: "v1-2025-seed", count: (1024 << 20) + 1) }, options: .unixfsV1_2025, cid: "bafybeibdsi225ugbkmpbdohnxioyab6jsqrmkts3twhpvfnzp77xtzpyhe"),
        .init(name: "chacha chunk-v1-seed 1 MiB + 1, v1-2025", input: { try Generators.chacha(seed: "chunk-v1-seed", count: (1 << 20) + 1) }, options: .unixfsV1_2025, cid: "bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64"),
    ]

    /// The ASCII text "deadbeef" repeated 16 Mi times.
    static func deadbeef() -> [UInt8] {
        let unit = Array("deadbeef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(unit.count << 24)
        for _ in 0..<(1 << 24) { out.append(contentsOf: unit) }
        return out
    }

    @Test(arguments: files)
    func fileVector(_ vector: FileVector) throws {
        let root = try FileImporter.importBytes(try vector.input(), options: vector.options) { _, _ in }
        #expect(root.cid.description == vector.cid)
    }

    /// Streaming in odd-sized writes gives the same root as one write.
    @Test func streamingWritesAreEquivalent() throws {
        let input = Generators.pattern(1_000_003)
        var importer = FileImporter(options: .kuboDefault) { _, _ in }
        var offset = 0
        var step = 1
        while offset < input.count {
            let end = min(offset + step, input.count)
            try importer.write(input[offset..<end])
            offset = end
            step = step * 3 % 100_003 + 1
        }
        let whole = try FileImporter.importBytes(input, options: .kuboDefault) { _, _ in }
        #expect(try importer.finish() == whole)
    }

    static let planets = Tree.directory(["mars.txt": .text("Hello Mars!\n"), "venus.txt": .text("Hello Venus!\n")])

    struct DirectoryVector: Sendable, CustomTestStringConvertible {
        var name: String
        var tree: @Sendable () throws -> Tree
        var options: ImportOptions
        var cid: String
        var testDescription: String { name }
    }

    static func numbered(_ count: Int) -> Tree {
        var entries: [String: Tree] = [:]
        for index in 0..<count { entries[String(format: "%08d", index)] = .text("x") }
        return .directory(entries)
    }

    static func longNames(_ count: Int) -> Tree {
        var entries: [String: Tree] = [:]
        for index in 0..<count {
            let name = "long name to fill out bytes to make the sharded directory test flip over the sharded directory limit because link names are included in the directory entry \(index)"
            entries[name] = .text(name)
        }
        return .directory(entries)
    }

    static func chachaNamed(seed: String, count: Int, length: @escaping (Int) -> Int) throws -> Tree {
        let names = try Generators.chachaNames(seed: seed, count: count, length: length)
        return .directory(Dictionary(names.map { ($0, Tree.text("x")) }, uniquingKeysWith: { first, _ in first }))
    }

    static let kubo039 = ImportOptions(hamtAtThreshold: true)

    static let directories: [DirectoryVector] = [
        .init(name: "empty dir, v0", tree: { .directory([:]) }, options: .kuboDefault, cid: "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"),
        .init(name: "empty dir, v1", tree: { .directory([:]) }, options: .cidV1, cid: "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"),
        .init(name: "big.bin 1 MiB of x, v1", tree: { .directory(["big.bin": .file([UInt8](repeating: 0x78, count: 1 << 20))]) }, options: .cidV1, cid: "bafybeiconxawjaqtqwur53yryub7awouqco4rlqqfbv6jypyfzeewmhrbe"),
        .init(name: "hello.txt, v1", tree: { .directory(["hello.txt": .text("hello\n")]) }, options: .cidV1, cid: "bafybeigdcg7pksx2zk5336vrfsktjodlr4rbfz37qr3koc5xboxe5ekv24"),
        .init(name: "planets, v0", tree: { planets }, options: .kuboDefault, cid: "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY"),
        .init(name: "planets, raw leaves", tree: { planets }, options: ImportOptions(cidVersion: 0, rawLeaves: true), cid: "QmfWfQfKCY5Ukv9peBbxM5vqWM9BzmqUSXvdCgjT2wsiBT"),
        .init(name: "planets, v1", tree: { planets }, options: .cidV1, cid: "bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi"),
        .init(name: "planets, v1 dag-pb leaves", tree: { planets }, options: v1NoRaw, cid: "bafybeif5tuep5ap2d7zyhbktucey75aoacxufgt6i3v4gebmixyipnyp7y"),
        .init(name: "moons", tree: {
            .directory(["jupiter": .directory(["europa.txt": .text("Hello Europa!\n")]),
                        "saturn": .directory(["titan.txt": .text("Hello Titan!\n")]),
                        "mercury.txt": .text("hey you are no moon!\n")])
        }, options: .kuboDefault, cid: "QmbGoaQZm8kjYfCiN1aBsgwhqfUBGDYTrDb91Mz7Dvq81B"),
        .init(name: "hey + hello/world", tree: { .directory(["hey": .text("Hey\n"), "hello": .directory(["world": .text("World\n")])]) }, options: .kuboDefault, cid: "QmZQWnfcqJ6hNkkPvrY9Q5X39GP3jUnUbAV4AbmbbR3Cb1"),
        .init(name: "a..j, v0", tree: { .directory(Dictionary(uniqueKeysWithValues: "abcdefghij".map { ("\($0).txt", Tree.text(String($0))) })) }, options: .kuboDefault, cid: "QmaVbVDQrEVXH6EAQQExN82Xt44VmrQWkkey4S8eYcTNRs"),
        .init(name: "a..j, v1", tree: { .directory(Dictionary(uniqueKeysWithValues: "abcdefghij".map { ("\($0).txt", Tree.text(String($0))) })) }, options: .cidV1, cid: "bafybeic44rqkymydh3gvookwnqasv5ydbk5owkl7l2pkvgmh4stny4cdly"),
        .init(name: "nested, v1", tree: {
            .directory(["top.txt": .text("top\n"), "sub": .directory(["inner.txt": .text("inner\n"), "deeper": .directory(["leaf.txt": .text("leaf\n")])])])
        }, options: .cidV1, cid: "bafybeidcclyz24mrl4furbaf4ecb3ks52dbfer7r6dxqavd4wrqg7bp7lu"),
        .init(name: "UTF-8 names, v1", tree: { .directory(["café.txt": .text("a\n"), "日本.txt": .text("b\n"), "🚀.txt": .text("c\n")]) }, options: .cidV1, cid: "bafybeib5csmg24msmu4jmaczufo6s5cciojvsct4nb56db46ozy6mz4bji"),
        // gateway-conformance fixtures/gateway-raw-block.car: `ipfs add -Qrw --cid-version 1 dir`
        // (-w wraps the folder in a directory).
        .init(name: "gateway-raw-block.car root", tree: {
            .directory(["dir": .directory(["ascii.txt": .text("hello application/vnd.ipld.raw\n")])])
        }, options: .cidV1, cid: "bafybeie72edlprgtlwwctzljf6gkn2wnlrddqjbkxo3jomh4n7omwblxly"),
        .init(name: "one empty file, v1", tree: { .directory(["empty": .file([])]) }, options: .cidV1, cid: "bafybeigalvxqcgqiogiv6bimmxedgxbhu7cikwhwha2c2iqzdbnabewjai"),
        .init(name: "5957 files: basic", tree: { numbered(5957) }, options: .cidV1, cid: "bafybeibqvqqd4yvkpt5olhxoayzzevdxkw5ucbk2hlnjrttpo6psbjwx4u"),
        .init(name: "5958 files: HAMT", tree: { numbered(5958) }, options: .cidV1, cid: "bafybeidzmazxweqx7qun4ezjil2iqmn7u23225yfxhekm5zysnwmmtbohe"),
        .init(name: "6000 files: HAMT", tree: { numbered(6000) }, options: .cidV1, cid: "bafybeidk3a4hr6msgcv24pkutwrethttydqzx56m724lsg75fzgeu3yzn4"),
        .init(name: "3 files basic", tree: { .directory(["col00000017.txt": .text("a"), "col00000029.txt": .text("b"), "Z": .text("c")]) }, options: .cidV1, cid: "bafybeiegiotpslrdicvq2duzx4gmigbxyocs7fw37q7hmwa3sseiz2tj7y"),
        .init(name: "3 files HAMT forced", tree: { .directory(["col00000017.txt": .text("a"), "col00000029.txt": .text("b"), "Z": .text("c")]) }, options: ImportOptions(cidVersion: 1, hamtThreshold: 1), cid: "bafybeihnymxn2dxzzz7jfwo6sfgotug6rmm3hdbxll7rgiq77lqzcb4tee"),
        .init(name: "1343 long names, v1: basic", tree: { longNames(1343) }, options: .cidV1, cid: "bafybeihecq4rpl4nw3cgfb2uiwltgsmw5sutouvuldv5fxn4gfbihvnalq"),
        .init(name: "1344 long names, v1: HAMT", tree: { longNames(1344) }, options: .cidV1, cid: "bafybeigyvxs6og5jbmpaa43qbhhd5swklqcfzqdrtjgfh53qjon6hpjaye"),
        .init(name: "1343 long names, v0", tree: { longNames(1343) }, options: .kuboDefault, cid: "QmdxLLEMKWrLU19aebBvVJY7QRSnaT9BHHmHMkJy5V6LmC"),
        .init(name: "1344 long names, v0: still basic", tree: { longNames(1344) }, options: .kuboDefault, cid: "QmRf5WqG6Wu4Mi6Z2kjKu8ShvcTzu8uwCev427Gh72dEFw"),
        .init(name: "5000 files %05d, v0: HAMT", tree: {
            var entries: [String: Tree] = [:]
            for index in 0..<5000 { entries[String(format: "file-with-a-fairly-long-name-%05d.txt", index)] = .text("\(index)\n") }
            return .directory(entries)
        }, options: .kuboDefault, cid: "QmXYscb6A7BNNReeHddBCXFJqma1UC8h3WvoEvF8BfMxox"),
        .init(name: "4096 chacha names, kubo >= 0.40: basic", tree: { try chachaNamed(seed: "hamt-unixfs-v0-2015", count: 4096) { _ in 30 } }, options: .kuboDefault, cid: "QmX5GtRk3TSSEHtdrykgqm4eqMEn3n2XhfkFAis5fjyZmN"),
        .init(name: "4096 chacha names, kubo <= 0.39: HAMT", tree: { try chachaNamed(seed: "hamt-unixfs-v0-2015", count: 4096) { _ in 30 } }, options: kubo039, cid: "QmWCW8YwPBGWx2DGftBBKeack73sRpxaFYSh9sGmxpgcKb"),
        .init(name: "4033 chacha names: HAMT", tree: { try chachaNamed(seed: "hamt-unixfs-v0-2015", count: 4033) { _ in 31 } }, options: .kuboDefault, cid: "QmeMiJzmhpJAUgynAcxTQYek5PPKgdv3qEvFsdV3XpVnvP"),
        .init(name: "4766 names, v1-2025 block-bytes: basic", tree: { try chachaNamed(seed: "hamt-unixfs-v1-2025", count: 4766) { $0 == 4765 ? 21 : 11 } }, options: .unixfsV1_2025, cid: "bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4"),
        .init(name: "4766 names, v1-2025 block-bytes: HAMT", tree: { try chachaNamed(seed: "hamt-unixfs-v1-2025", count: 4766) { $0 == 4765 ? 22 : 11 } }, options: .unixfsV1_2025, cid: "bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu"),
    ]

    @Test(arguments: directories)
    func directoryVector(_ vector: DirectoryVector) throws {
        let root = try vector.tree().importTree(vector.options)
        #expect(root.cid.description == vector.cid)
    }

    /// boxo's TestDirBuilding: a HAMT of 200 links DIRNAME0..199, each an empty directory.
    @Test func boxoHAMTDirBuilding() throws {
        let empty = try Tree.directory([:]).importTree(.kuboDefault)
        let entries = (0..<200).map { DirectoryEntry(name: "DIRNAME\($0)", node: empty) }
        let root = try HAMTBuilder.build(entries, options: .kuboDefault) { _, _ in }
        #expect(root.cid.description == "QmY89TkSEVHykWMHDmyejSWFj9CYNtvzw4UwnT9xbc4Zjc")
    }
}
