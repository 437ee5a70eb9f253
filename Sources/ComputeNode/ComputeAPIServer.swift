import Foundation
public import Hummingbird
import HummingbirdCore
import Logging
import BlockStore
public import ContentAddressing
import Models
import NodeAPI
import Wire

extension ComputeAgent {
    /// This node's HTTP API: the agent endpoints, the trustless gateway and the data API over
    /// its own store, so any node can be asked for data. Reads are open; writes take the
    /// node's own key or an upload grant (``ComputeAccess``). Nil when no port is configured.
    public nonisolated func makeAPIServer() -> (some ApplicationProtocol)? {
        guard let port = config.apiPort else { return nil as Application<RouterResponder<ComputeRequestContext>>? }
        let router = Router(context: ComputeRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: ComputeAccessControl(access: access))
        let agent = self
        let host = config.apiHost
        AgentRoutes(info: { NodeInfo(nodeID: agent.nodeID, nodeType: "Compute") }).add(to: router)
        ContentRoutes(store: content.store, scratchDirectory: config.dataDirectory, maxUploadBytes: UploadGrant.maxUploadBytes).add(to: router)
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

/// The request context of a compute node's own API. The operator's pins are the node's single
/// `user` holder unless the request names a result's or a dataset's; an upload grant pins only
/// for the holder it names.
public struct ComputeRequestContext: RequestContext, DataAccessContext {
    public var coreContext: CoreRequestContextStorage
    var caller: ComputeCaller = .anonymous

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    public func pinHolder(requested: String?) throws -> String {
        let holder = requested ?? PinHolder.user
        guard PinHolder.isValid(holder) else {
            throw CodError(.badRequest, "holder \(holder.prefix(140)) is invalid", hint: "use user, result:<execution ID> or dataset:<CID>")
        }
        switch caller {
        case .owner: return holder
        case .grant(let grant):
            guard holder == grant.holder else {
                throw CodError(.forbidden, "upload grant \(grant.id) pins for \(grant.holder), not \(holder)")
            }
            return holder
        case .anonymous: throw CodError(.unauthorized, "pinning on a compute node needs its own API key")
        }
    }

    public var uploadLimit: Int? {
        if case .grant(let grant) = caller { return grant.maxBytes }
        return nil
    }

    /// A grant's upload stores its one root, pinned for its holder; the CAR is refused before
    /// any block of it is stored otherwise.
    public func authorizeUpload(roots: [CID], pin: Bool, holder: String) throws {
        guard case .grant(let grant) = caller else { return }
        guard pin, holder == grant.holder else {
            throw CodError(.forbidden, "upload grant \(grant.id) stores its shard pinned for \(grant.holder): send ?pin=true&holder=\(grant.holder)")
        }
        let wanted = try? CID(grant.root).toV1
        guard roots.count == 1, roots[0].toV1 == wanted else {
            throw CodError(
                .forbidden,
                "upload grant \(grant.id) is for root \(grant.root), but the CAR's roots are [\(roots.prefix(3).map(\.description).joined(separator: ", "))\(roots.count > 3 ? ", …" : "")]")
        }
    }
}
