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
        var headers: HTTPFields = [.contentType: "application/json"]
        if let requestID { headers[.init("X-Request-ID")!] = requestID }
        return Response(
            status: HTTPResponse.Status(code: error.code.httpStatus), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(data: data)))
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
            return APIResponse.error(error, requestID: context.id)
        } catch let error as HTTPError {
            let code: CodError.Code = error.status == .notFound ? .notFound
                : error.status == .contentTooLarge ? .payloadTooLarge
                : error.status.code < 500 ? .badRequest : .internalError
            let message = error.status == .notFound && error.body == nil
                ? "no such endpoint: \(request.method) \(request.uri.path)" : (error.body ?? "\(error.status)")
            return APIResponse.error(CodError(code, message), requestID: context.id)
        } catch let error as NIOTooManyBytesError {
            let limit = error.maxBytes.map { "\($0) bytes" } ?? "its limit"
            return APIResponse.error(CodError(
                .payloadTooLarge, "the request body is larger than \(limit), the limit of \(request.method) \(request.uri.path)",
                hint: "large data belongs in the content store: cod data add"), requestID: context.id)
        } catch let error as DecodingError {
            return APIResponse.error(
                CodError(.badRequest, "the request body is not what \(request.method) \(request.uri.path) takes: \(Self.describe(error))"),
                requestID: context.id)
        } catch {
            context.logger.error("internal error on \(request.method) \(request.uri.path): \(error)")
            return APIResponse.error(CodError(.internalError, "internal error (request \(context.id)); see the server's log"), requestID: context.id)
        }
    }

    /// A decoding error as a field path and what was wrong, without Swift's type dump.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingPrefix(".").description
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key])) is required"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "\(path(context.codingPath)): \(context.debugDescription)"
        case .dataCorrupted(let context): return "\(path(context.codingPath).isEmpty ? "body" : path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}


/// `/api/v1/agent/*`, which every node answers.
public struct AgentRoutes: Sendable {
    let info: @Sendable () -> NodeInfo

    public init(info: @escaping @Sendable () -> NodeInfo) {
        self.info = info
    }

    public func add<Context: RequestContext>(to router: Router<Context>) {
        let info = self.info
        router.get("/api/v1/agent/alive") { _, _ in try APIResponse.json(AliveResponse()) }
        // Bacalhau embeds BuildVersionInfo in the response, so its fields sit at the top level.
        router.get("/api/v1/agent/version") { _, _ in try APIResponse.json(BuildVersionInfo.current) }
        router.get("/api/v1/agent/node") { _, _ in try APIResponse.json(info()) }
    }
}
