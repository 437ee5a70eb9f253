import CompressNIO
import NIOCore

/// gzip compression through zlib.
public enum Gzip {
    /// True when `bytes` start with the gzip magic number.
    public static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
    }

    public static func compress(_ bytes: [UInt8]) throws -> [UInt8] {
        var input = ByteBuffer(bytes: bytes)
        let output = try input.compress(with: .gzip())
        return Array(output.readableBytesView)
    }

    /// An archive that expands past its limit.
    public struct TooLarge: Error, CustomStringConvertible, Sendable {
        public let limit: Int
        public var description: String { "the data decompresses to more than \(limit) bytes" }
    }

    /// Decompresses, refusing to produce more than `maxSize` bytes (a defence against bombs):
    /// the output is produced through a 1 MiB window and counted as it comes, so a bomb costs
    /// at most `maxSize` bytes of memory before it is refused.
    public static func decompress(_ bytes: [UInt8], maxSize: Int = 1 << 31) throws -> [UInt8] {
        var input = ByteBuffer(bytes: bytes)
        let decompressor = CompressionAlgorithm.gzip().decompressor
        decompressor.window = ByteBufferAllocator().buffer(capacity: 1 << 20)
        try decompressor.startStream()
        var output: [UInt8] = []
        try input.decompressStream(with: decompressor) { window in
            guard window.readableBytes <= maxSize - output.count else { throw TooLarge(limit: maxSize) }
            output.append(contentsOf: window.readableBytesView)
        }
        try decompressor.finishStream()
        return output
    }
}
