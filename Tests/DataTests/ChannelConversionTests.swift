import Foundation
import TesseraData
import TestSupport
import XCTest

/// `Image.converted(toChannels:file:)` against conversions computed here, independently, pixel by pixel.
final class ChannelConversionTests: XCTestCase {
    /// Seeded samples of every layout, 8- and 16-bit.
    func image(channels: Int, sixteen: Bool, width: Int = 9, height: Int = 4) -> Image {
        var g = SystemRandomNumberGenerator()
        let n = width * height * channels
        return sixteen
            ? Image(
                width: width, height: height, channels: channels,
                samples: .uint16((0..<n).map { _ in UInt16.random(in: 0...65535, using: &g) }))
            : Image(
                width: width, height: height, channels: channels,
                samples: .uint8((0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }))
    }

    func values(_ image: Image) -> [Int] {
        switch image.samples {
        case .uint8(let v): return v.map(Int.init)
        case .uint16(let v): return v.map(Int.init)
        case .float32(let v): return v.map { Int($0) }
        }
    }

    func testEveryLayoutReachesOneAndThreeChannels() throws {
        for sixteen in [false, true] {
            for channels in 1...4 {
                let source = image(channels: channels, sixteen: sixteen)
                let v = values(source), pixels = source.width * source.height
                let gray = try source.converted(toChannels: 1, file: "x.png")
                let rgb = try source.converted(toChannels: 3, file: "x.png")
                XCTAssertEqual(gray.bitDepth, source.bitDepth, "the bit depth is kept")
                XCTAssertEqual(rgb.bitDepth, source.bitDepth)
                XCTAssertEqual([gray.channels, rgb.channels], [1, 3])
                let g = values(gray), c = values(rgb)
                for p in 0..<pixels {
                    let s = Array(v[(p * channels)..<((p + 1) * channels)])
                    // BT.601 luminance, rounded half up (PIL's convert("L")); alpha ignored.
                    let expectedGray =
                        channels >= 3
                        ? Int((Double(299 * s[0] + 587 * s[1] + 114 * s[2]) / 1000).rounded())
                        : s[0]
                    XCTAssertEqual(g[p], expectedGray, "pixel \(p) of \(channels) channels")
                    let expectedRGB = channels >= 3 ? Array(s[0..<3]) : [s[0], s[0], s[0]]
                    XCTAssertEqual(Array(c[(p * 3)..<(p * 3 + 3)]), expectedRGB, "pixel \(p) of \(channels) channels")
                }
            }
        }
    }

    func testPureColoursGiveTheirBT601Weights() throws {
        let rgb = Image(
            width: 4, height: 1, channels: 3, samples: .uint8([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]))
        XCTAssertEqual(values(try rgb.converted(toChannels: 1, file: "x")), [76, 150, 29, 255])
        let deep = Image(width: 1, height: 1, channels: 3, samples: .uint16([65535, 0, 0]))
        XCTAssertEqual(values(try deep.converted(toChannels: 1, file: "x")), [19595], "16-bit precision is kept")
    }

    func testLayoutsWithoutAConversionNameTheFileAndBothCounts() {
        let ga = image(channels: 2, sixteen: false)
        XCTAssertThrowsError(try ga.converted(toChannels: 5, file: "/data/a b.png")) { error in
            let text = "\(error)"
            XCTAssertTrue(
                text.contains("/data/a b.png") && text.contains("2 channels") && text.contains("takes 5"), text)
        }
        XCTAssertThrowsError(try image(channels: 1, sixteen: false).converted(toChannels: 2, file: "g.png"))
        XCTAssertNoThrow(try image(channels: 2, sixteen: false).converted(toChannels: 2, file: "same"))
    }

    /// Files of every layout the codecs read (gray 1-16 bit, gray+alpha, RGB, RGBA, palette with and without
    /// transparency, 16-bit RGBA, CMYK and EXIF-rotated JPEG) decode and convert to the model's 1 or 3 channels.
    func testEveryFileLayoutDecodesToTheModelsChannels() throws {
        var files: [(name: String, data: Data)] = []
        for channels in 1...4 {
            files.append(("c\(channels)-8.png", try ImageCodec.encodePNG(image(channels: channels, sixteen: false))))
            files.append(("c\(channels)-16.png", try ImageCodec.encodePNG(image(channels: channels, sixteen: true))))
        }
        let indices = Image(width: 9, height: 4, channels: 1, samples: .uint8((0..<36).map { UInt8($0 % 3) }))
        files.append(
            ("palette.png", try ImageCodec.encodePNG(indices, palette: [[0, 0, 0], [200, 10, 10], [0, 90, 250]])))
        let jpegs = SharedFixtures.sharedRoot.appendingPathComponent("data/jpeg")
        for name in ["cmyk.jpg", "exif-orientation6.jpg", "grayscale.jpg"] {
            let url = try SharedFixtures.require(jpegs.appendingPathComponent(name))
            files.append((name, try Data(contentsOf: url)))
        }
        for (name, data) in files {
            let decoded = try ImageCodec.decode(data, file: name)
            for wanted in [1, 3] {
                let converted = try decoded.converted(toChannels: wanted, file: name)
                XCTAssertEqual(
                    [converted.width, converted.height, converted.channels],
                    [decoded.width, decoded.height, wanted], name)
            }
        }
    }
}
