/// Unsigned LEB128 varints, as multiformats and protobuf use them.
public enum Varint {
    /// Appends `value` to `out`.
    public static func encode(_ value: UInt64, into out: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }

    public static func encode(_ value: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        encode(value, into: &out)
        return out
    }

    /// The encoded length of `value`.
    public static func size(_ value: UInt64) -> Int {
        var value = value
        var size = 1
        while value >= 0x80 {
            value >>= 7
            size += 1
        }
        return size
    }

    /// Reads a varint at `offset`, advancing it.
    ///
    /// - Parameter multiformats: enforce the multiformats rules (at most 9 bytes, minimal
    ///   encoding); protobuf fields allow 10 bytes.
    public static func decode(_ bytes: [UInt8], at offset: inout Int, multiformats: Bool = true) throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        let start = offset
        let limit = multiformats ? 9 : 10
        while true {
            guard offset < bytes.count else {
                throw ContentError("truncated varint at byte \(start)")
            }
            let byte = bytes[offset]
            offset += 1
            if shift == 63 && byte > 1 { throw ContentError("varint at byte \(start) overflows 64 bits") }
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                if multiformats, byte == 0, offset - start > 1 {
                    throw ContentError("varint at byte \(start) is not minimally encoded")
                }
                return value
            }
            shift += 7
            if offset - start >= limit { throw ContentError("varint at byte \(start) is longer than \(limit) bytes") }
        }
    }
}
