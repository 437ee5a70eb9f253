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
    /// at most `maxSize` bytes of memory before it is refused. Each step must consume input or
    /// produce output; one that does neither (trailing bytes after the stream, a stream that
    /// stops short) ends the loop instead of spinning on it.
    public static func decompress(_ bytes: [UInt8], maxSize: Int = 1 << 31) throws -> [UInt8] {
        var input = ByteBuffer(bytes: bytes)
        let decompressor = CompressionAlgorithm.gzip().decompressor
        try decompressor.startStream()
        var window = ByteBufferAllocator().buffer(capacity: 1 << 20)
        var output: [UInt8] = []
        func take() throws {
            guard window.readableBytes <= maxSize - output.count else { throw TooLarge(limit: maxSize) }
            output.append(contentsOf: window.readableBytesView)
            window.clear()
        }
        while input.readableBytes > 0 {
            let before = input.readableBytes
            var full = false
            do {
                try input.decompressStream(to: &window, with: decompressor)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                full = true
            }
            let produced = window.readableBytes
            try take()
            if !full, produced == 0, input.readableBytes == before { break }
        }
        try decompressor.finishStream()
        return output
    }
}
