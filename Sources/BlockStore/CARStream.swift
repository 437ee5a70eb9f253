public import ContentAddressing
import Foundation

/// Reads a CAR from a file section by section, verifying and storing each block, so memory
/// holds one block at a time whatever the archive's size.
public enum CARStream {
    /// `checkRoots` sees the header's roots before any block is stored, and may refuse them.
    public static func importFile(
        _ url: URL, into store: FileBlockStore, checkRoots: ([CID]) throws -> Void = { _ in }
    ) throws -> (roots: [CID], blocks: Int) {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var reader = BufferedReader(handle: handle)
        // CARv2: skip to the inner CARv1.
        let pragma: [UInt8] = [0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02]
        let start = try reader.peek(11)
        var limit = UInt64.max
        if start == pragma {
            let header = try reader.read(51)
            func u64(_ offset: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(header[offset + $1]) << (8 * UInt64($1)) } }
            let dataOffset = u64(27)
            limit = u64(35)
            let fileSize = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.uint64Value ?? 0
            guard dataOffset >= 51, dataOffset <= fileSize, limit <= fileSize - dataOffset else {
                throw ContentError("CARv2 data section (offset \(dataOffset), size \(limit)) lies outside the \(fileSize)-byte file")
            }
            try reader.skip(Int(dataOffset) - 51)
            reader.remaining = limit
        }
        let headerLength = try reader.varint()
        guard headerLength > 0, headerLength < 1 << 20 else { throw ContentError("CAR header length \(headerLength) is not plausible") }
        let headerBytes = try reader.read(Int(headerLength))
        let archive = try CAR.read(Varint.encode(headerLength) + headerBytes)
        try checkRoots(archive.roots)
        var count = 0
        while try !reader.atEnd() {
            let offset = reader.position
            let length = try reader.varint()
            guard length > 0, length <= 8 << 20 else {
                throw ContentError("CAR section at byte \(offset) claims \(length) bytes (blocks are at most 8 MiB)")
            }
            let section = try reader.read(Int(length))
            var inner = 0
            let cid = try CID.decode(section, at: &inner)
            let block = Array(section[inner...])
            guard try cid.multihash.verify(block) else {
                throw ContentError("CAR block \(cid) at byte \(offset) does not match its CID (corrupt data)", code: .corrupt)
            }
            try store.put(cid, block)
            count += 1
        }
        return (archive.roots, count)
    }

    /// Reads from a file handle through a buffer consumed by index (compacted now and then),
    /// so taking bytes never shifts the whole buffer.
    struct BufferedReader {
        let handle: FileHandle
        var buffer: [UInt8] = []
        var start = 0
        var position = 0
        var remaining = UInt64.max

        init(handle: FileHandle) {
            self.handle = handle
        }

        var available: Int { buffer.count - start }

        mutating func fill(_ count: Int) throws {
            while available < count {
                if start > 0 {
                    buffer.removeFirst(start)
                    start = 0
                }
                guard let data = try handle.read(upToCount: max(1 << 20, count - available)), !data.isEmpty else { return }
                buffer.append(contentsOf: data)
            }
        }

        mutating func peek(_ count: Int) throws -> [UInt8] {
            try fill(count)
            return Array(buffer[start..<start + min(count, available)])
        }

        mutating func read(_ count: Int) throws -> [UInt8] {
            guard UInt64(count) <= remaining else { throw ContentError("CAR is truncated at byte \(position)") }
            try fill(count)
            guard available >= count else { throw ContentError("CAR is truncated at byte \(position + available)") }
            let bytes = Array(buffer[start..<start + count])
            start += count
            position += count
            if remaining != .max { remaining -= UInt64(count) }
            return bytes
        }

        /// Discards `count` bytes a buffer at a time.
        mutating func skip(_ count: Int) throws {
            var left = count
            while left > 0 {
                let step = min(left, 1 << 20)
                _ = try read(step)
                left -= step
            }
        }

        mutating func varint() throws -> UInt64 {
            try fill(10)
            var offset = 0
            let value = try Varint.decode(Array(buffer[start..<start + min(10, available)]), at: &offset)
            _ = try read(offset)
            return value
        }

        mutating func atEnd() throws -> Bool {
            if remaining == 0 { return true }
            try fill(1)
            return available == 0
        }
    }
}
