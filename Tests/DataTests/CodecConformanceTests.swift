import Foundation
import TesseraData
import TesseraEngine
import TestSupport
import XCTest

/// PngSuite and the JPEG cases in ../shared/data: expected pixels, and clear errors for corrupt files.
final class CodecConformanceTests: XCTestCase {
    var dataRoot: URL { SharedFixtures.sharedRoot.appendingPathComponent("data") }

    func loadJSONArray(_ url: URL) throws -> [Int] {
        let any = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        guard let list = any as? [NSNumber] else { throw FileError(file: url.path, reason: "not a flat JSON array") }
        return list.map(\.intValue)
    }

    /// Expands decoded samples to RGBA (gray replicated, missing alpha opaque at `maxValue`).
    func rgba(_ image: Image, maxValue: Int) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(image.width * image.height * 4)
        for y in 0..<image.height {
            for x in 0..<image.width {
                let s = (0..<image.channels).map { image.sample(x: x, y: y, channel: $0) }
                switch image.channels {
                case 1: out += [s[0], s[0], s[0], maxValue]
                case 2: out += [s[0], s[0], s[0], s[1]]
                case 3: out += [s[0], s[1], s[2], maxValue]
                default: out += s
                }
            }
        }
        return out
    }

    func testPngSuite() throws {
        let suite = try SharedFixtures.require(dataRoot.appendingPathComponent("pngsuite"))
        let names = try FileManager.default.contentsOfDirectory(atPath: suite.appendingPathComponent("png").path)
            .filter { $0.hasSuffix(".png") }.sorted()
        var valid = 0, rejected = 0
        for name in names {
            let url = suite.appendingPathComponent("png/\(name)")
            let stem = String(name.dropLast(4))
            if name.hasPrefix("x") {
                XCTAssertThrowsError(try ImageCodec.decode(url), "\(name) should be rejected") { error in
                    XCTAssertTrue("\(error)".contains(url.path), "error does not name the file: \(error)")
                    XCTAssertGreaterThan((error as? FileError)?.reason.count ?? 0, 3)
                }
                rejected += 1
                continue
            }
            let info = try ImageCodec.info(of: url)
            if info.bitDepth == 16 {
                let native = try ImageCodec.decode(url)
                XCTAssertEqual(native.bitDepth, 16, "\(name) must stay 16-bit")
                let expected = try loadJSONArray(suite.appendingPathComponent("json/\(stem).json"))
                XCTAssertEqual(rgba(native, maxValue: 65535), expected, "\(name) 16-bit pixels")
            } else {
                var options = ImageCodec.Options()
                options.rgba8 = true
                let image = try ImageCodec.decode(url, options: options)
                XCTAssertEqual(image.channels, 4)
                let expected = try loadJSONArray(suite.appendingPathComponent("json/\(stem).json"))
                XCTAssertEqual(rgba(image, maxValue: 255), expected, "\(name) 8-bit RGBA pixels")
            }
            valid += 1
        }
        XCTAssertEqual(valid, 161)
        XCTAssertEqual(rejected, 14)
    }

    /// Binary PPM (P6, 8-bit).
    func readPPM(_ url: URL) throws -> (width: Int, height: Int, rgb: [UInt8]) {
        let data = [UInt8](try Data(contentsOf: url))
        var fields: [String] = [], i = 0, current = ""
        while fields.count < 4 && i < data.count {
            let ch = Character(UnicodeScalar(data[i]))
            if ch == "#" {
                while i < data.count && data[i] != 10 { i += 1 }
            } else if ch.isWhitespace {
                if !current.isEmpty { fields.append(current); current = "" }
            } else {
                current.append(ch)
            }
            i += 1
        }
        guard fields.count == 4, fields[0] == "P6", let w = Int(fields[1]), let h = Int(fields[2]) else {
            throw FileError(file: url.path, reason: "not a P6 PPM")
        }
        return (w, h, Array(data[i..<(i + w * h * 3)]))
    }

    func meanAbsoluteDifference(_ image: Image, _ ppm: (width: Int, height: Int, rgb: [UInt8])) -> Double? {
        guard image.width == ppm.width, image.height == ppm.height else { return nil }
        var total = 0
        for y in 0..<image.height {
            for x in 0..<image.width {
                for c in 0..<3 {
                    let v = image.sample(x: x, y: y, channel: image.channels == 1 ? 0 : c)
                    total += abs(v - Int(ppm.rgb[(y * image.width + x) * 3 + c]))
                }
            }
        }
        return Double(total) / Double(image.width * image.height * 3)
    }

    func testJpegCases() throws {
        let dir = try SharedFixtures.require(dataRoot.appendingPathComponent("jpeg"))
        for name in ["testorig", "testimgint", "testimgari", "baseline-q90", "progressive", "grayscale", "cmyk"] {
            let url = dir.appendingPathComponent("\(name).jpg")
            let image = try ImageCodec.decode(url)
            let expected = try readPPM(dir.appendingPathComponent("\(name).decoded.ppm"))
            let mad = try XCTUnwrap(
                meanAbsoluteDifference(image, expected), "\(name): size \(image.width)x\(image.height)")
            XCTAssertLessThanOrEqual(mad, 1.0, "\(name) mean abs difference \(mad)")
        }
        let gray = try ImageCodec.decode(dir.appendingPathComponent("grayscale.jpg"))
        XCTAssertEqual(gray.channels, 1, "a grayscale JPEG decodes to one channel")
        XCTAssertTrue(try ImageCodec.info(of: dir.appendingPathComponent("progressive.jpg")).interlaced)

        let rotated = dir.appendingPathComponent("exif-orientation6.jpg")
        XCTAssertEqual(try ImageCodec.info(of: rotated).orientation, 6)
        let upright = try ImageCodec.decode(rotated)
        let original = try readPPM(dir.appendingPathComponent("testorig.ppm"))
        XCTAssertEqual([upright.width, upright.height], [227, 149])
        let mad = try XCTUnwrap(meanAbsoluteDifference(upright, original))
        XCTAssertLessThan(mad, 2.5, "orientation 6 applied: mean abs difference \(mad)")

        for (name, phrase) in [("monkey12", "precision"), ("truncated", "")] {
            let url = dir.appendingPathComponent("\(name).jpg")
            XCTAssertThrowsError(try ImageCodec.decode(url), "\(name) must fail") { error in
                XCTAssertTrue("\(error)".contains(url.path), "\(error)")
                if !phrase.isEmpty { XCTAssertTrue("\(error)".lowercased().contains(phrase), "\(error)") }
            }
        }
    }

    /// A row window decodes to exactly those rows of the whole image, for every valid PngSuite file (interlaced
    /// ones included) and every JPEG case (progressive, CMYK, EXIF-rotated included).
    func testRowWindowsEqualTheWholeImagesRows() throws {
        let pngs = try SharedFixtures.require(dataRoot.appendingPathComponent("pngsuite/png"))
        let jpegs = try SharedFixtures.require(dataRoot.appendingPathComponent("jpeg"))
        let files =
            try FileManager.default.contentsOfDirectory(at: pngs, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "png" && !$0.lastPathComponent.hasPrefix("x") }
            + ["testorig", "progressive", "grayscale", "cmyk", "exif-orientation6"].map {
                jpegs.appendingPathComponent("\($0).jpg")
            }
        var checked = 0
        for url in files.sorted(by: { $0.path < $1.path }) {
            let whole = try ImageCodec.decode(url)
            for rows in [
                (whole.height / 3)..<(2 * whole.height / 3 + 1), 0..<1, (whole.height - 1)..<whole.height,
                (whole.height / 2)..<(whole.height + 5)
            ] where !rows.isEmpty {
                var options = ImageCodec.Options()
                options.rows = rows
                let part = try ImageCodec.decode(url, options: options)
                let end = min(rows.upperBound, whole.height)
                XCTAssertEqual(
                    part, whole.cropped(x: 0, y: rows.lowerBound, width: whole.width, height: end - rows.lowerBound),
                    "\(url.lastPathComponent) rows \(rows)")
            }
            checked += 1
        }
        XCTAssertEqual(checked, 166)
    }
}
