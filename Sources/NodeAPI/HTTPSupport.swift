import Foundation
public import Hummingbird
public import Models
import NIOCore
import Wire

/// JSON responses and errors in Bacalhau's conventions.
public enum APIResponse {
    public static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONEncoder().encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(data: data)))
    }

    public static func error(_ error: CodError, requestID: String? = nil) -> Response {
        let body = ErrorResponse(
            message: error.message, code: error.code.name, status: error.code.httpStatus, hint: error.hint, requestID: requestID)
        let data = (try? JSONEncoder().encode(body)) ?? Data()
        return Response(
            status: HTTPResponse.Status(code: error.code.httpStatus), headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(data: data)))
    }
}

/// Turns every error a handler throws into a JSON error body with a code; unknown errors are
/// logged and reported as internal without leaking details.
public struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as CodError {
            return APIResponse.error(error)
        } catch let error as HTTPError {
            let code: CodError.Code = error.status == .notFound ? .notFound
                : error.status == .contentTooLarge ? .payloadTooLarge
                : error.status.code < 500 ? .badRequest : .internalError
            let message = error.status == .notFound && error.body == nil
                ? "no such endpoint: \(request.method) \(request.uri.path)" : (error.body ?? "\(error.status)")
            return APIResponse.error(CodError(code, message))
        } catch {
            context.logger.error("internal error on \(request.method) \(request.uri.path): \(error)")
            return APIResponse.error(CodError(.internalError, "internal error; see the orchestrator's log"))
        }
    }
}


/// `/api/v1/agent/*`, which every node answers.
public struct AgentRoutes: Sendable {
    let info: @Sendable () -> NodeInfo

    public init(info: @escaping @Sendable () -> NodeInfo) {
        self.info = info
    }

    public func add(to router: Router<BasicRequestContext>) {
        let info = self.info
        router.get("/api/v1/agent/alive") { _, _ in try APIResponse.json(AliveResponse()) }
        // Bacalhau embeds BuildVersionInfo in the response, so its fields sit at the top level.
        router.get("/api/v1/agent/version") { _, _ in try APIResponse.json(BuildVersionInfo.current) }
        router.get("/api/v1/agent/node") { _, _ in try APIResponse.json(info()) }
    }
}
