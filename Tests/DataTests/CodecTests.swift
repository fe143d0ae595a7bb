import Foundation
import TesseraData
import TesseraEngine
import XCTest

/// Round trips, limits and malformed input that need no shared data.
final class CodecTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("codec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testPngRoundTripsEveryLayout() throws {
        for channels in 1...4 {
            let n = 7 * 5 * channels
            let eight = Image(
                width: 7, height: 5, channels: channels, samples: .uint8((0..<n).map { UInt8($0 * 7 % 256) }))
            XCTAssertEqual(try ImageCodec.decode(ImageCodec.encodePNG(eight), file: "m"), eight)
            let sixteen = Image(
                width: 7, height: 5, channels: channels,
                samples: .uint16((0..<n).map { UInt16($0 * 1031 % 65536) }))
            XCTAssertEqual(
                try ImageCodec.decode(ImageCodec.encodePNG(sixteen), file: "m"), sixteen, "16-bit stays 16-bit")
        }
    }

    func testIndexedPngKeepsIndicesAndColours() throws {
        let mask = Image(width: 4, height: 2, channels: 1, samples: .uint8([0, 1, 2, 1, 0, 2, 2, 1]))
        let palette: [[UInt8]] = [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
        let url = dir.appendingPathComponent("mask.png")
        try ImageCodec.write(mask, to: url, palette: palette)
        var options = ImageCodec.Options()
        options.rgba8 = true
        let colours = try ImageCodec.decode(url, options: options)
        XCTAssertEqual(colours.sample(x: 1, y: 0, channel: 0), 128)
        XCTAssertEqual(colours.sample(x: 2, y: 1, channel: 1), 128)
        XCTAssertThrowsError(
            try ImageCodec.encodePNG(Image(width: 1, height: 1, channels: 1, samples: .uint8([3])), palette: palette))
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir.path), ["mask.png"], "no temporary file left")
    }

    func testJpegRoundTripIsClose() throws {
        let n = 32 * 24 * 3
        let image = Image(width: 32, height: 24, channels: 3, samples: .uint8((0..<n).map { UInt8(($0 / 3 % 32) * 8) }))
        let back = try ImageCodec.decode(ImageCodec.encodeJPEG(image, quality: 95), file: "m")
        XCTAssertEqual([back.width, back.height, back.channels], [32, 24, 3])
        var total = 0
        for y in 0..<24 {
            for x in 0..<32 {
                for c in 0..<3 {
                    total += abs(back.sample(x: x, y: y, channel: c) - image.sample(x: x, y: y, channel: c))
                }
            }
        }
        XCTAssertLessThan(Double(total) / Double(n), 3)
    }

    func testHugeHeaderFailsBeforeAllocating() throws {
        // A valid PNG whose IHDR claims 100000 x 100000.
        var png = try ImageCodec.encodePNG(Image(width: 1, height: 1, channels: 1, samples: .uint8([0])))
        png.replaceSubrange(16..<24, with: [0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0])
        let crc = crc32(png[12..<29])
        png.replaceSubrange(
            29..<33, with: [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)])
        XCTAssertEqual(try ImageCodec.info(of: png, file: "big.png").width, 100_000)
        XCTAssertThrowsError(try ImageCodec.decode(png, file: "big.png")) { error in
            XCTAssertTrue("\(error)".contains("big.png"))
            XCTAssertTrue("\(error)".contains("over the limit"), "\(error)")
        }
    }

    /// Bytes count as well as pixels: 16384 x 12000 16-bit RGBA is under the 2^28-pixel limit but 1.5 GiB of
    /// samples, over the 1 GiB byte limit; 8-bit gray of the same size (192 MiB) passes the check and fails only
    /// at its missing pixel data.
    func testDecodedBytesAreLimitedBeforeAllocating() throws {
        func header(width: UInt32, height: UInt32, depth: UInt8, colorType: UInt8) throws -> Data {
            var png = try ImageCodec.encodePNG(Image(width: 1, height: 1, channels: 1, samples: .uint8([0])))
            let be = { (v: UInt32) in [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
            png.replaceSubrange(16..<26, with: be(width) + be(height) + [depth, colorType])
            png.replaceSubrange(29..<33, with: be(crc32(png[12..<29])))
            return png
        }
        let deep = try header(width: 16384, height: 12000, depth: 16, colorType: 6)
        XCTAssertThrowsError(try ImageCodec.decode(deep, file: "deep.png")) { error in
            XCTAssertTrue("\(error)".contains("deep.png") && "\(error)".contains("bytes, over the limit"), "\(error)")
        }
        let gray = try header(width: 16384, height: 12000, depth: 8, colorType: 0)
        XCTAssertThrowsError(try ImageCodec.decode(gray, file: "gray.png")) { error in
            XCTAssertFalse("\(error)".contains("over the limit"), "\(error)")
        }
    }

    func testGarbageAndMutationsNeverCrash() throws {
        XCTAssertThrowsError(try ImageCodec.decode(Data("hello".utf8), file: "t.png")) {
            XCTAssertTrue("\($0)".contains("not a PNG, JPEG or TIFF"))
        }
        let n = 16 * 16 * 3
        let image = Image(width: 16, height: 16, channels: 3, samples: .uint8((0..<n).map { UInt8($0 % 251) }))
        let originals = [try ImageCodec.encodePNG(image), try ImageCodec.encodeJPEG(image)]
        var state: UInt64 = 12345
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407; return Int(state >> 33) % bound
        }
        var failures = 0
        for original in originals {
            for _ in 0..<400 {
                var bytes = [UInt8](original)
                if next(2) == 0 {
                    bytes = Array(bytes.prefix(3 + next(bytes.count - 3)))
                } else {
                    for _ in 0..<(1 + next(6)) { bytes[8 + next(bytes.count - 8)] = UInt8(next(256)) }
                }
                do { _ = try ImageCodec.decode(Data(bytes), file: "fuzz") } catch is FileError { failures += 1 }
            }
        }
        XCTAssertGreaterThan(failures, 100)
    }

    func testOrientationTransforms() {
        // 3 x 2 image with distinct values: rows [0 1 2] [3 4 5].
        let img = Image(width: 3, height: 2, channels: 1, samples: .uint8([0, 1, 2, 3, 4, 5]))
        XCTAssertEqual(img.oriented(2).samples, .uint8([2, 1, 0, 5, 4, 3]))
        XCTAssertEqual(img.oriented(3).samples, .uint8([5, 4, 3, 2, 1, 0]))
        XCTAssertEqual(img.oriented(6).samples, .uint8([3, 0, 4, 1, 5, 2]))  // 90 degrees clockwise
        XCTAssertEqual(img.oriented(8).samples, .uint8([2, 5, 1, 4, 0, 3]))  // 90 degrees counter-clockwise
        XCTAssertEqual([img.oriented(6).width, img.oriented(6).height], [2, 3])
    }

    func crc32(_ bytes: Data) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }
}
