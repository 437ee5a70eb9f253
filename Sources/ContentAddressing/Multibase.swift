/// Multibase encodings used for CIDs: base32 (lower, no padding), base58btc, base36, base16.
public enum Multibase: Character, Sendable, CaseIterable {
    case base32 = "b"
    case base58btc = "z"
    case base36 = "k"
    case base16 = "f"

    static let base32Alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
    static let base58Alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".utf8)
    static let base36Alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
    static let base16Alphabet = Array("0123456789abcdef".utf8)

    /// Encodes without the prefix character.
    public func encode(_ bytes: [UInt8]) -> String {
        switch self {
        case .base32: return Self.encodeBase32(bytes)
        case .base58btc: return Self.encodeBaseX(bytes, alphabet: Self.base58Alphabet)
        case .base36: return Self.encodeBaseX(bytes, alphabet: Self.base36Alphabet)
        case .base16:
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count * 2)
            for byte in bytes {
                out.append(Self.base16Alphabet[Int(byte >> 4)])
                out.append(Self.base16Alphabet[Int(byte & 0xf)])
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// Decodes text without the prefix character.
    public func decode(_ text: Substring) throws -> [UInt8] {
        switch self {
        case .base32: return try Self.decodeBase32(text)
        case .base58btc: return try Self.decodeBaseX(text, alphabet: Self.base58Alphabet, name: "base58btc")
        case .base36: return try Self.decodeBaseX(text.lowercased()[...], alphabet: Self.base36Alphabet, name: "base36")
        case .base16:
            let chars = Array(text.lowercased().utf8)
            guard chars.count % 2 == 0 else { throw ContentError("base16 text has an odd number of digits") }
            var out: [UInt8] = []
            out.reserveCapacity(chars.count / 2)
            var index = 0
            while index < chars.count {
                guard let high = Self.base16Alphabet.firstIndex(of: chars[index]),
                    let low = Self.base16Alphabet.firstIndex(of: chars[index + 1])
                else { throw ContentError("invalid base16 digit near position \(index)") }
                out.append(UInt8(high << 4 | low))
                index += 2
            }
            return out
        }
    }

    static func encodeBase32(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(base32Alphabet[Int((buffer >> UInt32(bits)) & 31)])
            }
        }
        if bits > 0 { out.append(base32Alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func decodeBase32(_ text: Substring) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 5 / 8)
        var buffer: UInt32 = 0
        var bits = 0
        for (position, char) in text.utf8.enumerated() {
            let lower = char >= 65 && char <= 90 ? char + 32 : char
            guard let value = base32Alphabet.firstIndex(of: lower) else {
                throw ContentError("invalid base32 character at position \(position)")
            }
            buffer = (buffer << 5) | UInt32(value)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return out
    }

    /// Big-number base conversion with leading zero bytes kept as leading zero digits.
    static func encodeBaseX(_ bytes: [UInt8], alphabet: [UInt8]) -> String {
        let base = UInt32(alphabet.count)
        let zeros = bytes.prefix { $0 == 0 }.count
        var digits: [UInt8] = []  // little-endian digits
        for byte in bytes[zeros...] {
            var carry = UInt32(byte)
            for index in digits.indices {
                carry += UInt32(digits[index]) << 8
                digits[index] = UInt8(carry % base)
                carry /= base
            }
            while carry > 0 {
                digits.append(UInt8(carry % base))
                carry /= base
            }
        }
        let out = [UInt8](repeating: alphabet[0], count: zeros) + digits.reversed().map { alphabet[Int($0)] }
        return String(decoding: out, as: UTF8.self)
    }

    static func decodeBaseX(_ text: Substring, alphabet: [UInt8], name: String) throws -> [UInt8] {
        let base = UInt32(alphabet.count)
        let chars = Array(text.utf8)
        let zeros = chars.prefix { $0 == alphabet[0] }.count
        var bytes: [UInt8] = []  // little-endian
        for (position, char) in chars[zeros...].enumerated() {
            guard let value = alphabet.firstIndex(of: char) else {
                throw ContentError("invalid \(name) character at position \(position + zeros)")
            }
            var carry = UInt32(value)
            for index in bytes.indices {
                carry += UInt32(bytes[index]) * base
                bytes[index] = UInt8(carry & 0xff)
                carry >>= 8
            }
            while carry > 0 {
                bytes.append(UInt8(carry & 0xff))
                carry >>= 8
            }
        }
        return [UInt8](repeating: 0, count: zeros) + bytes.reversed()
    }
}
