import Foundation
public import Hummingbird
import HummingbirdCore
import Logging
import BlockStore
import Models
import NodeAPI

extension ComputeAgent {
    /// This node's HTTP API: the agent endpoints, the trustless gateway and the data API over
    /// its own store, so any node can be asked for data. Nil when no port is configured.
    public nonisolated func makeAPIServer() -> (some ApplicationProtocol)? {
        guard let port = config.apiPort else { return nil as Application<RouterResponder<ComputeRequestContext>>? }
        let router = Router(context: ComputeRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        let agent = self
        let host = config.apiHost
        AgentRoutes(info: { NodeInfo(nodeID: agent.nodeID, nodeType: "Compute") }).add(to: router)
        ContentRoutes(store: content.store, scratchDirectory: config.dataDirectory, maxUploadBytes: 8 << 30).add(to: router)
        return Application(
            router: router,
            // Idle and half-sent connections are closed, as on the orchestrator.
            server: HTTPServerBuilder { responder in
                HeadDeadlineChannel(
                    HTTP1Channel(responder: responder, configuration: .init(idleTimeout: .seconds(60))), timeout: .seconds(60))
            },
            configuration: .init(address: .hostname(host, port: port), serverName: "cod-compute"),
            onServerRunning: { channel in
                await agent.setAPIAddress("http://\(host):\(channel.localAddress?.port ?? port)")
            },
            logger: logger)
    }
}

/// The request context of a compute node's own API. Pins made here are the node's single
/// `user` holder unless the request names a result's or a dataset's.
public struct ComputeRequestContext: RequestContext, DataAccessContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    public func pinHolder(requested: String?) throws -> String {
        let holder = requested ?? PinHolder.user
        guard PinHolder.isValid(holder) else {
            throw CodError(.badRequest, "holder \(holder.prefix(140)) is invalid", hint: "use user, result:<execution ID> or dataset:<CID>")
        }
        return holder
    }
}
