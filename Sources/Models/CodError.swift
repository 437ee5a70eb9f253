/// An error Cod reports to users: a stable code, a message that says what to do, and the
/// HTTP status it maps to at the API.
///
/// ```swift
/// throw CodError(.notFound, "job j-1234 not found")
/// ```
public struct CodError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Code
    public var message: String
    /// A suggestion for the user, shown under the message.
    public var hint: String?

    public init(_ code: Code, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String {
        if let hint { return "\(message)\nhint: \(hint)" }
        return message
    }

    /// Error codes. A struct rather than an enum so that new codes are not a breaking change.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        public let httpStatus: Int
        public let retryable: Bool

        public var description: String { name }

        public static let invalidJob = Code(name: "InvalidJobSpec", httpStatus: 400, retryable: false)
        public static let badRequest = Code(name: "BadRequest", httpStatus: 400, retryable: false)
        public static let notFound = Code(name: "NotFound", httpStatus: 404, retryable: false)
        public static let ambiguous = Code(name: "AmbiguousID", httpStatus: 400, retryable: false)
        public static let conflict = Code(name: "Conflict", httpStatus: 409, retryable: true)
        public static let payloadTooLarge = Code(name: "PayloadTooLarge", httpStatus: 413, retryable: false)
        public static let unauthorized = Code(name: "Unauthorized", httpStatus: 401, retryable: false)
        /// The caller is known but lacks the capability.
        public static let forbidden = Code(name: "Forbidden", httpStatus: 403, retryable: false)
        /// The account cannot pay what is asked (a job's hold, a payout).
        public static let paymentRequired = Code(name: "PaymentRequired", httpStatus: 402, retryable: false)
        public static let internalError = Code(name: "InternalError", httpStatus: 500, retryable: true)
        public static let unavailable = Code(name: "Unavailable", httpStatus: 503, retryable: true)
        public static let executionFailed = Code(name: "ExecutionFailed", httpStatus: 500, retryable: true)
        public static let timeout = Code(name: "Timeout", httpStatus: 504, retryable: true)
        /// A client's view of TLS going wrong: the server's certificate is not the pinned one,
        /// is not trusted, or the server does not speak TLS at all. (495 is the status proxies
        /// use for a certificate error.)
        public static let tlsFingerprintMismatch = Code(name: "TLSFingerprintMismatch", httpStatus: 495, retryable: false)
        public static let tlsCertificateRefused = Code(name: "TLSCertificateRefused", httpStatus: 495, retryable: false)
        public static let tlsNotOffered = Code(name: "TLSNotOffered", httpStatus: 502, retryable: false)

        public var isTLSFailure: Bool { [Code.tlsFingerprintMismatch, .tlsCertificateRefused, .tlsNotOffered].contains(self) }

        /// Finds a known code by name (used by clients decoding error bodies).
        public static func named(_ name: String, status: Int) -> Code {
            let known: [Code] = [
                .invalidJob, .badRequest, .notFound, .ambiguous, .conflict, .payloadTooLarge, .unauthorized, .forbidden, .paymentRequired,
                .internalError, .unavailable, .executionFailed, .timeout, .tlsFingerprintMismatch, .tlsCertificateRefused, .tlsNotOffered,
            ]
            return known.first { $0.name == name } ?? Code(name: name, httpStatus: status, retryable: false)
        }
    }
}
