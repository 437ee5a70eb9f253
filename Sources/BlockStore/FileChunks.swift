import Foundation
public import NIOCore

/// A file read lazily in pieces as an async sequence of byte buffers: a piece is read only when
/// the consumer (an HTTP upload) asks for the next one, so memory holds one piece at a time.
public struct FileChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    let url: URL
    let size: Int

    public init(_ url: URL, size: Int = 1 << 20) {
        self.url = url
        self.size = size
    }

    /// The file's length, for a `Content-Length`.
    public var length: Int64 {
        (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value ?? 0
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let url: URL
        let size: Int
        var handle: FileHandle?
        var finished = false

        public mutating func next() async throws -> ByteBuffer? {
            guard !finished else { return nil }
            if handle == nil { handle = try FileHandle(forReadingFrom: url) }
            guard let data = try handle?.read(upToCount: size), !data.isEmpty else {
                try? handle?.close()
                finished = true
                return nil
            }
            return ByteBuffer(bytes: data)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(url: url, size: size)
    }
}
