import Foundation
import Hummingbird
import Wire

/// Bacalhau's paging: `limit` and an opaque `next_token` (an offset, base64url-encoded).
enum Paging {
    static func page<T: Codable & Sendable>(_ all: [T], _ request: Request) -> ListResponse<T> {
        let query = request.uri.queryParameters
        let limit = min(max(Int(query.get("limit") ?? "") ?? 1000, 1), 10_000)
        let offset = decodeToken(query.get("next_token"))
        let items = Array(all.dropFirst(offset).prefix(limit))
        let more = offset + items.count < all.count
        return ListResponse(items: items, nextToken: more ? encodeToken(offset + limit) : "")
    }

    static func encodeToken(_ offset: Int) -> String {
        Base64URL.encode(Data("offset:\(offset)".utf8))
    }

    /// The offset a token stands for; 0 for none or anything malformed.
    static func decodeToken(_ token: String?) -> Int {
        guard let token, !token.isEmpty else { return 0 }
        guard let data = Base64URL.decode(token), let text = String(data: data, encoding: .utf8),
            text.hasPrefix("offset:"), let offset = Int(text.dropFirst(7)), offset >= 0
        else { return 0 }
        return offset
    }
}

extension Request {
    /// This server as the client addressed it, for URLs in responses.
    var baseURL: String { "http://\(head.authority ?? "127.0.0.1:1234")" }
}
