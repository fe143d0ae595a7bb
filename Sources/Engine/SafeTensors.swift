import Foundation

/// Element types a safetensors file may declare.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// A parsed safetensors file: validated header, metadata, and tensors decoded to Float32 on demand.
public struct SafeTensorsFile {
    /// One tensor's header entry.
    public struct Entry: Sendable {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        let range: Range<Int>
    }

    /// Largest header the format allows (as the reference implementation).
    public static let maxHeaderBytes = 100_000_000

    public let file: String
    public let metadata: [String: String]
    /// Entries in header order of their data offsets.
    public let entries: [Entry]
    private let data: Data
    private let dataStart: Int

    /// Reads and validates `url` (memory-mapped).
    public init(contentsOf url: URL) throws {
        let bytes: Data
        do {
            bytes = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw FileError(file: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        try self.init(data: bytes, file: url.path)
    }

    /// Parses and validates an in-memory file; `file` names it in errors.
    public init(data: Data, file: String) throws {
        func fail(_ reason: String) -> FileError { FileError(file: file, reason: reason) }
        self.file = file
        self.data = data
        guard data.count >= 8 else { throw fail("file is \(data.count) bytes, shorter than the 8-byte header length") }
        let n = data.withUnsafeBytes { raw -> UInt64 in
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(raw[i]) << (8 * UInt64(i)) }
            return v
        }
        guard n <= UInt64(Self.maxHeaderBytes) else { throw fail("header length \(n) exceeds the 100 MB limit") }
        guard n <= UInt64(data.count - 8) else {
            throw fail("header length \(n) runs past the end of the \(data.count)-byte file")
        }
        let headerLength = Int(n)
        dataStart = 8 + headerLength
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<dataStart), options: [])
        } catch {
            throw fail("header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("header is not a JSON object") }
        var meta: [String: String] = [:]
        var entries: [Entry] = []
        let payload = data.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw fail("__metadata__ value for '\(k)' is not a string") }
                    meta[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else { throw fail("entry '\(name)' is not an object") }
            guard let dt = info["dtype"] as? String else { throw fail("tensor '\(name)' has no dtype") }
            guard let dtype = SafeTensorsDType(rawValue: dt) else {
                throw fail("tensor '\(name)' has unknown dtype '\(dt)'")
            }
            guard let shapeAny = info["shape"] as? [Any] else { throw fail("tensor '\(name)' has no shape") }
            var shape: [Int] = []
            var elements = 1
            for d in shapeAny {
                guard let num = d as? NSNumber, Double(num.int64Value) == num.doubleValue, num.int64Value >= 0,
                    num.int64Value < Int64(Int32.max)
                else {
                    throw fail("tensor '\(name)' has an invalid dimension \(d)")
                }
                shape.append(num.intValue)
                let (p, overflow) = elements.multipliedReportingOverflow(by: num.intValue)
                guard !overflow, p <= payload else {
                    throw fail("tensor '\(name)' shape \(shapeAny) is larger than the file")
                }
                elements = p
            }
            guard let offs = info["data_offsets"] as? [Any], offs.count == 2,
                let b = (offs[0] as? NSNumber)?.int64Value, let e = (offs[1] as? NSNumber)?.int64Value
            else {
                throw fail("tensor '\(name)' has no valid data_offsets")
            }
            guard b >= 0, e >= b, e <= Int64(payload) else {
                throw fail("tensor '\(name)' data_offsets [\(b), \(e)] out of range for \(payload) data bytes")
            }
            guard Int(e - b) == elements * dtype.byteSize else {
                throw fail(
                    "tensor '\(name)' has \(e - b) bytes but \(dtype.rawValue) \(shape) needs \(elements * dtype.byteSize)"
                )
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, range: Int(b)..<Int(e)))
        }
        entries.sort {
            $0.range.lowerBound < $1.range.lowerBound
                || ($0.range.lowerBound == $1.range.lowerBound && $0.name < $1.name)
        }
        for (a, b) in zip(entries, entries.dropFirst()) where a.range.upperBound > b.range.lowerBound {
            if !(a.range.isEmpty || b.range.isEmpty) {
                throw fail("tensors '\(a.name)' and '\(b.name)' overlap")
            }
        }
        metadata = meta
        self.entries = entries
    }

    /// Names of all tensors, in file order.
    public var names: [String] { entries.map(\.name) }

    /// The entry named `name`, if any.
    public func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    /// The tensor `name` converted to Float32.
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = entry(name) else { throw FileError(file: file, reason: "no tensor named '\(name)'") }
        let out = Tensor(zeros: e.shape, zeroed: false)
        let n = out.count, dst = out.pointer
        data.withUnsafeBytes { raw in
            let src = raw.baseAddress! + dataStart + e.range.lowerBound
            func load<T>(_: T.Type, _ i: Int) -> T {
                src.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)
            }
            switch e.dtype {
            case .f32: for i in 0..<n { dst[i] = Float(bitPattern: UInt32(littleEndian: load(UInt32.self, i))) }
            case .f64: for i in 0..<n { dst[i] = Float(Double(bitPattern: UInt64(littleEndian: load(UInt64.self, i)))) }
            case .f16: for i in 0..<n { dst[i] = Float(halfBits: UInt16(littleEndian: load(UInt16.self, i))) }
            case .bf16:
                for i in 0..<n { dst[i] = Float(bitPattern: UInt32(UInt16(littleEndian: load(UInt16.self, i))) << 16) }
            case .i64: for i in 0..<n { dst[i] = Float(Int64(littleEndian: load(Int64.self, i))) }
            case .i32: for i in 0..<n { dst[i] = Float(Int32(littleEndian: load(Int32.self, i))) }
            case .i16: for i in 0..<n { dst[i] = Float(Int16(littleEndian: load(Int16.self, i))) }
            case .i8: for i in 0..<n { dst[i] = Float(load(Int8.self, i)) }
            case .u8, .bool: for i in 0..<n { dst[i] = Float(load(UInt8.self, i)) }
            }
        }
        return out
    }

    /// Writes F32 tensors and string metadata; the file appears atomically (temporary file, then rename).
    public static func write(
        _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:],
        to url: URL
    ) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, t) in tensors {
            precondition(name != "__metadata__", "reserved tensor name")
            let bytes = t.count * 4
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (json.count + 8) % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, t) in tensors {
            let c = t.contiguous()
            out.append(UnsafeBufferPointer(start: c.pointer, count: c.count))
        }
        try AtomicFile.write(out, to: url)
    }
}

extension Float {
    /// Decodes IEEE half-precision bits.
    init(halfBits h: UInt16) {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1F)
        let frac = UInt32(h & 0x3FF)
        if exp == 0 {
            let v = Float(frac) / 1024 * Float(sign: .plus, exponent: -14, significand: 1)
            self = sign != 0 ? -v : v
        } else if exp == 31 {
            self = Float(bitPattern: sign | 0x7F80_0000 | (frac << 13))
        } else {
            self = Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (frac << 13))
        }
    }
}
