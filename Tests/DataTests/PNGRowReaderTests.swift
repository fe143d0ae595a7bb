import CTestSupport
import Foundation
import TesseraData
import TestSupport
import XCTest

/// The fast reader for 8-bit non-interlaced PNG rows against the pixels a file was made from, and against libpng.
final class PNGRowReaderTests: XCTestCase {
    /// A PNG written by the test's own writer (not libpng) with the given filter per row.
    func file(_ pixels: [UInt8], width: Int, height: Int, channels: Int, filters: [UInt8], chunk: Int = 97) -> Data {
        var size = 0
        let bytes = pixels.withUnsafeBufferPointer { p in
            filters.withUnsafeBufferPointer { f in
                tst_png_filtered(
                    p.baseAddress, UInt32(width), UInt32(height), Int32(channels), f.baseAddress, chunk, &size)
            }
        }
        guard let bytes else { return Data() }
        defer { free(bytes) }
        return Data(bytes: bytes, count: size)
    }

    func decode(_ data: Data, rows: Range<Int>? = nil, libpng: Bool = false) throws -> Image {
        var options = ImageCodec.Options()
        options.rows = rows
        options.libpngRows = libpng
        return try ImageCodec.decode(data, file: "test.png", options: options)
    }

    /// Noise, gradients and flat runs, so every filter meets small, large and wrapping differences.
    func pixels(width: Int, height: Int, channels: Int, rng: inout SplitMix) -> [UInt8] {
        let kind = rng.next() % 3
        return (0..<(width * height * channels)).map { i in
            let x = (i / channels) % width, y = i / (channels * width)
            switch kind {
            case 0: return UInt8(truncatingIfNeeded: rng.next())
            case 1: return UInt8(truncatingIfNeeded: x * 3 + y * 5 + (i % channels) * 40 + Int(rng.next() % 4))
            default: return (x / 7 + y / 5) % 2 == 0 ? 255 : UInt8(truncatingIfNeeded: rng.next() % 8)
            }
        }
    }

    /// Filter sequences with Paeth runs shorter, equal to and longer than the kernel's 16-row bands, mixed rows,
    /// and runs crossing the reader's 64-row inflate bands.
    func filters(height: Int, pattern: Int, rng: inout SplitMix) -> [UInt8] {
        switch pattern {
        case 0: return [UInt8](repeating: 4, count: height)
        case 1: return (0..<height).map { UInt8($0 % 5) }
        case 2: return (0..<height).map { ($0 / 17) % 2 == 0 ? 4 : UInt8($0 % 4) }
        default: return (0..<height).map { _ in UInt8(rng.next() % 5) }
        }
    }

    func testRowsEqualTheWrittenPixelsForEveryFilterAndWindow() throws {
        var rng = SplitMix(seed: 7)
        var cases = 0
        for channels in 1...4 {
            for (width, height) in [(1, 1), (1, 40), (2, 3), (17, 33), (64, 70), (300, 131), (5, 200)] {
                for pattern in 0..<4 {
                    let pix = pixels(width: width, height: height, channels: channels, rng: &rng)
                    let data = file(
                        pix, width: width, height: height, channels: channels,
                        filters: filters(height: height, pattern: pattern, rng: &rng), chunk: 1 + Int(rng.next() % 300))
                    let whole = try decode(data)
                    let expected = Image(width: width, height: height, channels: channels, samples: .uint8(pix))
                    XCTAssertEqual(whole, expected, "\(width)x\(height)x\(channels) pattern \(pattern)")
                    XCTAssertEqual(try decode(data, libpng: true), expected, "libpng on the same file")
                    let a = Int(rng.next() % UInt64(height)), b = a + 1 + Int(rng.next() % UInt64(height - a))
                    for rows in [a..<b, (height - 1)..<height, 0..<min(height, 65)] {
                        XCTAssertEqual(
                            try decode(data, rows: rows),
                            expected.cropped(x: 0, y: rows.lowerBound, width: width, height: rows.count),
                            "\(width)x\(height)x\(channels) pattern \(pattern) rows \(rows)")
                    }
                    cases += 1
                }
            }
        }
        XCTAssertEqual(cases, 112)
    }

    /// Damage inside the image data fails with libpng's wording, for the rows needed, never a crash.
    func testDamagedImageDataIsRejected() throws {
        var rng = SplitMix(seed: 3)
        let width = 40, height = 50
        let pix = pixels(width: width, height: height, channels: 1, rng: &rng)
        let good = file(
            pix, width: width, height: height, channels: 1, filters: [UInt8](repeating: 4, count: height), chunk: 200)
        XCTAssertNoThrow(try decode(good))
        let idat = try XCTUnwrap(good.range(of: Data("IDAT".utf8), in: 40..<good.count)).lowerBound  // first non-empty

        func fails(_ data: Data, _ phrase: String, rows: Range<Int>? = nil, line: UInt = #line) {
            XCTAssertThrowsError(try decode(data, rows: rows), line: line) { error in
                XCTAssertTrue("\(error)".contains("test.png"), "\(error)", line: line)
                XCTAssertTrue("\(error)".lowercased().contains(phrase.lowercased()), "\(error)", line: line)
            }
        }
        var crc = good
        crc[idat + 10] ^= 0x20
        fails(crc, "CRC error")
        fails(good.prefix(idat + 150), "end of file")
        fails(good.prefix(idat + 150), "end of file", rows: 0..<2)

        let badFilter = file(
            pix, width: width, height: height, channels: 1,
            filters: (0..<height).map { $0 == 30 ? 5 : 4 }, chunk: 64)
        fails(badFilter, "filter")
        XCTAssertEqual(try decode(badFilter, rows: 0..<30).height, 30, "rows above the bad one are readable")

        // A stream that ends early: the first 20 rows only, declared as 50.
        var short = file(
            Array(pix.prefix(width * 20)), width: width, height: 20, channels: 1,
            filters: [UInt8](repeating: 1, count: 20))
        short.replaceSubrange(20..<24, with: [0, 0, 0, UInt8(height)])
        let ihdr = short.subdata(in: 12..<29)
        var crcBytes = withUnsafeBytes(of: UInt32(ihdrCRC(ihdr)).bigEndian) { Data($0) }
        short.replaceSubrange(29..<33, with: crcBytes)
        fails(short, "not enough image data")
        XCTAssertThrowsError(try decode(short, libpng: true), "libpng agrees")

        var garbage = good
        for i in (idat + 6)..<(idat + 60) { garbage[i] = UInt8(truncatingIfNeeded: i &* 37) }
        crcBytes = withUnsafeBytes(of: UInt32(ihdrCRC(garbage.subdata(in: (idat)..<(idat + 4 + 200)))).bigEndian) {
            Data($0)
        }
        garbage.replaceSubrange((idat + 204)..<(idat + 208), with: crcBytes)
        XCTAssertThrowsError(try decode(garbage)) { XCTAssertTrue("\($0)".contains("test.png")) }
    }

    /// CRC-32 (PNG's polynomial) of a chunk's type and data.
    func ihdrCRC(_ bytes: Data) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }

    /// Every valid PngSuite file and every ISBI slice: the same pixels through the fast reader and through libpng.
    func testSameAsLibpngOnRealFiles() throws {
        let root = SharedFixtures.sharedRoot.appendingPathComponent("data")
        let suite = try SharedFixtures.require(root.appendingPathComponent("pngsuite/png"))
        let isbi = try SharedFixtures.require(root.appendingPathComponent("isbi2012"))
        var files = try FileManager.default.contentsOfDirectory(at: suite, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "png" && !$0.lastPathComponent.hasPrefix("x") }
        for sub in ["images", "masks"] {
            files += try FileManager.default.contentsOfDirectory(
                at: isbi.appendingPathComponent(sub), includingPropertiesForKeys: nil
            )
            .filter { $0.pathExtension == "png" }
        }
        var fast = 0
        for url in files.sorted(by: { $0.path < $1.path }) {
            let data = try Data(contentsOf: url)
            let info = try ImageCodec.info(of: url)
            for rows in [nil, (info.height / 3)..<(info.height / 2 + 1)] as [Range<Int>?] {
                var options = ImageCodec.Options()
                options.rows = rows
                let a = try ImageCodec.decode(data, file: url.path, options: options)
                options.libpngRows = true
                XCTAssertEqual(
                    a, try ImageCodec.decode(data, file: url.path, options: options),
                    "\(url.lastPathComponent) \(String(describing: rows))")
            }
            if info.bitDepth == 8 && !info.interlaced { fast += 1 }
        }
        XCTAssertEqual(files.count, 161 + 40)
        XCTAssertGreaterThan(fast, 40, "the fast reader saw the ISBI files and 8-bit PngSuite files")
    }
}

/// A small seeded generator for test data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
