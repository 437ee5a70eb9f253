import Testing
import Wire

@Suite("Certificate fingerprints")
struct CertificateFingerprintTests {
    @Test func printedFormReadsBackHoweverItIsWritten() {
        let printed = CertificateFingerprint.of(der: Array("a certificate".utf8))
        #expect(printed.hasPrefix("SHA256:"))
        #expect(printed.split(separator: ":").count == 33)
        let digits = CertificateFingerprint.normalize(printed)
        #expect(digits?.count == 64)
        #expect(CertificateFingerprint.normalize(printed.lowercased()) == digits)
        #expect(CertificateFingerprint.normalize(String(printed.dropFirst(7))) == digits)
        #expect(CertificateFingerprint.normalize(" " + digits! + "\n") == digits)
    }

    @Test func anythingButThirtyTwoBytesOfHexIsRefused() {
        for text in ["", "SHA256:", "SHA256:AB:CD", String(repeating: "g", count: 64), String(repeating: "a", count: 66), "sha1:" + String(repeating: "a", count: 64)] {
            #expect(CertificateFingerprint.normalize(text) == nil, "\(text)")
        }
    }
}
