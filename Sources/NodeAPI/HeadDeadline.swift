public import HummingbirdCore
public import Logging
public import NIOCore

/// Closes a connection that has not sent a complete request head within `timeout` of
/// connecting. Hummingbird's idle timeout starts only once a head is parsed (so a client that
/// sends half a head and then nothing would hold its connection forever); this covers the
/// stretch before it. It watches raw bytes for the blank line ending the head, then leaves the
/// pipeline, so long polls and log follows, which send nothing for minutes, are not cut.
public struct HeadDeadlineChannel<Inner: ServerChildChannel>: ServerChildChannel {
    public typealias Value = Inner.Value
    let inner: Inner
    let timeout: TimeAmount

    public init(_ inner: Inner, timeout: TimeAmount) {
        self.inner = inner
        self.timeout = timeout
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let timeout = self.timeout
        return channel.eventLoop.makeCompletedFuture {
            // After any TLS handler: the terminator is looked for in the decrypted bytes.
            try channel.pipeline.syncOperations.addHandler(FirstHeadDeadline(timeout: timeout))
        }.flatMap { self.inner.setup(channel: channel, logger: logger) }
    }

    public func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// The handler: a timer from activation, cancelled at the first `\r\n\r\n`.
final class FirstHeadDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    /// The last bytes seen, to find a terminator split across reads.
    private var tail: [UInt8] = []
    /// The largest request head accepted before the deadline matters less than its size.
    static let maxHeadBytes = 256 << 10
    private var seen = 0

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard timer == nil else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        seen += buffer.readableBytes
        let bytes = tail + buffer.readableBytesView
        let complete = Self.containsTerminator(bytes)
        tail = Array(bytes.suffix(3))
        context.fireChannelRead(data)
        if complete || seen > Self.maxHeadBytes {
            timer?.cancel()
            timer = nil
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    static func containsTerminator(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4 else { return false }
        for index in 0...(bytes.count - 4)
        where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return true
        }
        return false
    }
}
