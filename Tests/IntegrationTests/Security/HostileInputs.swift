import Archives
import ContentAddressing
import Foundation
import Models
import Wire

/// Hostile inputs made by hand, the way an attacker would make them, for the security tests:
/// tarballs, UnixFS DAGs packed as CARs, job specs and raw requests.
enum HostileInputs {
    // MARK: Tarballs

    enum EntryKind: UInt8 { case file = 48, symlink = 50, directory = 53 }

    /// A ustar archive of the entries given, in order, with sizes written as given.
    static func tar(_ entries: [(name: String, kind: EntryKind, contents: String, link: String)], base256Size: UInt64? = nil) -> [UInt8] {
        var out: [UInt8] = []
        for entry in entries {
            var header = [UInt8](repeating: 0, count: 512)
            func put(_ bytes: [UInt8], _ offset: Int) { for (i, b) in bytes.enumerated() where offset + i < 512 { header[offset + i] = b } }
            func octal(_ value: Int, _ width: Int) -> [UInt8] {
                let digits = String(value, radix: 8)
                return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
            }
            let body = Array(entry.contents.utf8)
            put(Array(entry.name.utf8), 0)
            put(octal(0o644, 8), 100)
            if let base256Size {
                var field = [UInt8](repeating: 0, count: 12)
                field[0] = 0x80
                for i in 0..<8 { field[11 - i] = UInt8(truncatingIfNeeded: base256Size >> (8 * UInt64(i))) }
                put(field, 124)
            } else {
                put(octal(body.count, 12), 124)
            }
            header[156] = entry.kind.rawValue
            put(Array(entry.link.utf8), 157)
            put(Array("ustar".utf8) + [0], 257)
            put(Array("00".utf8), 263)
            for i in 148..<156 { header[i] = 0x20 }
            put(octal(header.reduce(0) { $0 + Int($1) }, 7) + [0x20], 148)
            out += header + body + [UInt8](repeating: 0, count: (512 - body.count % 512) % 512)
        }
        return out + [UInt8](repeating: 0, count: 1024)
    }

    static func dataURL(_ bytes: [UInt8]) throws -> String {
        "data:application/gzip;base64," + Data(try Gzip.compress(bytes)).base64EncodedString()
    }

    /// A tarball whose links climb out only when resolved on disk, then write `hostPath`.
    static func symlinkEscapeTarball(writing hostPath: String) -> [UInt8] {
        let climb = Array(repeating: "..", count: 40).joined(separator: "/")
        return tar([
            ("ll", .symlink, "", "."),
            ("xx", .symlink, "", "ll/ll/" + climb),
            ("xx" + hostPath, .file, "owned\n", ""),
        ])
    }

    // MARK: DAGs

    /// Blocks of a DAG being crafted, written out as one CARv1.
    struct DAG {
        private(set) var blocks: [(CID, [UInt8])] = []

        mutating func put(_ node: PBNode) -> CID {
            let block = node.encode()
            let cid = CID(v1: CID.dagPB, multihash: Multihash.sha256(block))
            blocks.append((cid, block))
            return cid
        }

        mutating func file(_ text: String) -> CID {
            let bytes = Array(text.utf8)
            let cid = CID(v1: CID.raw, multihash: Multihash.sha256(bytes))
            blocks.append((cid, bytes))
            return cid
        }

        mutating func symlink(_ target: String) -> CID {
            put(PBNode(data: UnixFSData(kind: .symlink, data: Array(target.utf8)).encode()))
        }

        mutating func directory(_ entries: [(String, CID)]) -> CID {
            put(PBNode(links: entries.map { PBLink(hash: $0.1, name: $0.0, tsize: 0) }, data: UnixFSData(kind: .directory).encode()))
        }

        func car(root: CID) -> [UInt8] {
            blocks.reversed().reduce(CAR.header(roots: [root])) { $0 + CAR.section(cid: $1.0, block: $1.1) }
        }
    }

    // MARK: Job specs

    /// A batch job running `command` in the process engine, with extra task fields merged in.
    static func processJob(_ command: [String], inputs: [[String: Any]] = [], task extra: [String: Any] = [:]) throws -> Data {
        var task: [String: Any] = [
            "Name": "main",
            "Engine": ["Type": "process", "Params": ["Command": command[0], "Arguments": Array(command.dropFirst())]],
            "InputSources": inputs,
            "Timeouts": ["ExecutionTimeout": 60],
        ]
        task.merge(extra) { _, new in new }
        return try JSONSerialization.data(withJSONObject: ["Job": ["Type": "batch", "Count": 1, "Tasks": [task]]])
    }

    static func inlineInput(_ url: String, target: String = "/inputs/x") -> [String: Any] {
        ["Target": target, "Source": ["Type": "inline", "Params": ["URL": url]]]
    }

    /// A CARv2 whose data offset points far past its end.
    static func carV2WithHugeOffset() -> [UInt8] {
        let pragma: [UInt8] = [0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02]
        var header = [UInt8](repeating: 0, count: 40)
        for i in 0..<8 { header[16 + i] = 0xff; header[24 + i] = 0x10 }
        return pragma + header + [UInt8](repeating: 0, count: 64)
    }

    /// A dataset manifest whose file sizes add up past 2^64.
    static func overflowingManifest() throws -> Data {
        let file: [String: Any] = ["Path": "a", "CID": "bafkqaaa", "Size": UInt64.max]
        let other: [String: Any] = ["Path": "b", "CID": "bafkqaaa", "Size": UInt64.max]
        let shard: [String: Any] = ["Index": 0, "CID": "bafkqaaa", "Bytes": 0, "Files": [file, other], "Nodes": []]
        return try JSONSerialization.data(withJSONObject: ["Dataset": [
            "CID": "bafkqaaa", "Name": "huge", "Bytes": 0, "Replication": 1, "Shards": [shard], "CreateTime": 0,
        ]])
    }
}
