import Crypto
import Foundation

/// A certificate's SHA-256 fingerprint, as `cod serve --tls-self-signed` prints it and
/// `--tls-fingerprint` takes it: `SHA256:` then 32 uppercase hex pairs joined by colons.
public enum CertificateFingerprint {
    /// The fingerprint of a certificate's DER encoding.
    public static func of(der: [UInt8]) -> String {
        "SHA256:" + SHA256.hash(data: der).map { hexPair($0) }.joined(separator: ":")
    }

    /// The 64 lowercase hex digits a fingerprint names, however it is written: with or without
    /// `SHA256:` (any case), colons or spaces. Nil when it is not 32 bytes of hex.
    public static func normalize(_ text: String) -> String? {
        var rest = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        if rest.lowercased().hasPrefix("sha256:") { rest = rest.dropFirst(7) }
        let digits = rest.filter { $0 != ":" && $0 != " " }.lowercased()
        guard digits.count == 64, digits.allSatisfy({ $0.isHexDigit }) else { return nil }
        return digits
    }

    private static func hexPair(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}
