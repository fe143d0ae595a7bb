import Foundation
import TesseraEngine
import XCTest

final class SafeTensorsTests: XCTestCase {
    /// Builds a safetensors file from a header object and raw data bytes.
    func file(header: Any, data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
        let json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        var out = Data()
        withUnsafeBytes(of: (declaredLength ?? UInt64(json.count)).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(contentsOf: data)
        return out
    }

    func reason(_ data: Data) -> String? {
        do {
            _ = try SafeTensorsFile(data: data, file: "bad.safetensors")
            return nil
        } catch let e as FileError {
            XCTAssertEqual(e.file, "bad.safetensors")
            return e.reason
        } catch {
            XCTFail("unexpected error type \(error)")
            return nil
        }
    }

    func testRoundTripWithMetadata() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.safetensors")
        let a = Tensor([1, -2, 3.5, 4, 5, 6], shape: [2, 3])
        let b = Tensor([0.25], shape: [])
        try SafeTensorsFile.write(
            [("layer1.0.conv1.weight", a), ("bn1.running_mean", b)], metadata: ["arch": "unet"], to: url)
        let f = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(f.metadata, ["arch": "unet"])
        XCTAssertEqual(Set(f.names), ["layer1.0.conv1.weight", "bn1.running_mean"])
        XCTAssertEqual(try f.tensor("layer1.0.conv1.weight").scalars, a.scalars)
        XCTAssertEqual(try f.tensor("layer1.0.conv1.weight").shape, [2, 3])
        XCTAssertEqual(try f.tensor("bn1.running_mean").shape, [])
        XCTAssertEqual(try f.tensor("bn1.running_mean").item, 0.25)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0 != "m.safetensors" }
        XCTAssertEqual(leftovers, [], "temporary files left behind")
    }

    func testReadsHalfBFloatAndInt64() throws {
        // F16: 1.0 = 0x3C00, -2.5 = 0xC100, 65504 = 0x7BFF, smallest subnormal 2^-24 = 0x0001.
        // BF16: 1.0 = 0x3F80, -3.0 = 0xC040. I64: 7, -9.
        var bytes: [UInt8] = [0x00, 0x3C, 0x00, 0xC1, 0xFF, 0x7B, 0x01, 0x00]
        bytes += [0x80, 0x3F, 0x40, 0xC0]
        for v: Int64 in [7, -9] { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        let header: [String: Any] = [
            "h": ["dtype": "F16", "shape": [4], "data_offsets": [0, 8]],
            "b": ["dtype": "BF16", "shape": [2], "data_offsets": [8, 12]],
            "i": ["dtype": "I64", "shape": [2, 1], "data_offsets": [12, 28]]
        ]
        let f = try SafeTensorsFile(data: file(header: header, data: bytes), file: "x")
        XCTAssertEqual(try f.tensor("h").scalars, [1, -2.5, 65504, Float(sign: .plus, exponent: -24, significand: 1)])
        XCTAssertEqual(try f.tensor("b").scalars, [1, -3])
        XCTAssertEqual(try f.tensor("i").scalars, [7, -9])
        XCTAssertEqual(f.entry("i")?.dtype, .i64)
    }

    func testMalformedFilesGiveReasons() {
        let ok: [String: Any] = ["t": ["dtype": "F32", "shape": [2], "data_offsets": [0, 8]]]
        let eight = [UInt8](repeating: 0, count: 8)
        XCTAssertNotNil(reason(Data([1, 2, 3]))?.range(of: "shorter"))
        XCTAssertNotNil(reason(file(header: ok, data: eight, declaredLength: 1 << 40))?.range(of: "exceeds"))
        XCTAssertNotNil(reason(file(header: ok, data: eight, declaredLength: 5000))?.range(of: "past the end"))
        var notJSON = Data()
        withUnsafeBytes(of: UInt64(4).littleEndian) { notJSON.append(contentsOf: $0) }
        notJSON.append(contentsOf: Array("{{{{".utf8))
        XCTAssertNotNil(reason(notJSON)?.range(of: "not valid JSON"))
        XCTAssertNotNil(reason(file(header: [1, 2]))?.range(of: "not a JSON object"))
        XCTAssertNotNil(
            reason(file(header: ["t": ["dtype": "Q7", "shape": [2], "data_offsets": [0, 8]]], data: eight))?
                .range(of: "unknown dtype"))
        XCTAssertNotNil(
            reason(file(header: ["t": ["dtype": "F32", "shape": [2]]], data: eight))?.range(of: "data_offsets"))
        XCTAssertNotNil(
            reason(file(header: ["t": ["dtype": "F32", "shape": [2], "data_offsets": [0, 16]]], data: eight))?
                .range(of: "out of range"))
        XCTAssertNotNil(
            reason(file(header: ["t": ["dtype": "F32", "shape": [3], "data_offsets": [0, 8]]], data: eight))?
                .range(of: "needs 12"))
        XCTAssertNotNil(
            reason(file(header: ["t": ["dtype": "F32", "shape": [-2], "data_offsets": [0, 8]]], data: eight))?
                .range(of: "invalid dimension"))
        XCTAssertNotNil(
            reason(
                file(
                    header: ["t": ["dtype": "F32", "shape": [1 << 30, 1 << 30], "data_offsets": [0, 8]]],
                    data: eight))?.range(of: "larger than the file"))
        XCTAssertNotNil(
            reason(
                file(
                    header: [
                        "a": ["dtype": "F32", "shape": [2], "data_offsets": [0, 8]],
                        "b": ["dtype": "F32", "shape": [1], "data_offsets": [4, 8]]
                    ], data: eight))?
                .range(of: "overlap"))
        XCTAssertNotNil(reason(file(header: ["__metadata__": ["k": 3]]))?.range(of: "not a string"))
    }

    /// Random corruptions of a valid file either parse or throw; they never crash or over-allocate.
    func testMutatedFilesNeverCrash() throws {
        let a = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        let dir = FileManager.default.temporaryDirectory
        let url = dir.appendingPathComponent("fuzz-\(UUID().uuidString).safetensors")
        try SafeTensorsFile.write([("w", a), ("b", Tensor([1, 2], shape: [2]))], metadata: ["m": "x"], to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let original = [UInt8](try Data(contentsOf: url))
        var rng = RandomGenerator(seed: 7)
        var parsed = 0, rejected = 0
        for _ in 0..<3000 {
            var bytes = original
            switch rng.nextInt(3) {
            case 0: bytes = Array(bytes.prefix(rng.nextInt(bytes.count)))
            case 1:
                for _ in 0..<(1 + rng.nextInt(4)) { bytes[rng.nextInt(bytes.count)] = UInt8(rng.nextInt(256)) }
            default:
                let digits = Array("0123456789-,[]\"".utf8)
                for _ in 0..<(1 + rng.nextInt(3)) {
                    bytes[8 + rng.nextInt(min(bytes.count - 8, 120))] = digits[rng.nextInt(digits.count)]
                }
            }
            do {
                let f = try SafeTensorsFile(data: Data(bytes), file: "fuzz")
                for name in f.names { _ = try f.tensor(name) }
                parsed += 1
            } catch is FileError {
                rejected += 1
            }
        }
        XCTAssertGreaterThan(rejected, 1000)
        XCTAssertGreaterThan(parsed + rejected, 2999)
    }
}
