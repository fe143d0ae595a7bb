import Foundation
import TesseraData
import TestSupport
import XCTest

/// Every sample format, planar and contiguous, tiled and striped, each compression, BigTIFF and multi-page files,
/// written through libtiff and read back against the pixels written.
final class TIFFConformanceTests: XCTestCase {
    /// A deterministic pattern with every bit of the depth exercised (gradients, a checkerboard, noise).
    static func pattern(width: Int, height: Int, channels: Int, bitDepth: Int, seed: Int = 1) -> Image {
        let n = width * height * channels
        var state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        // Smooth enough for JPEG to stay close, with noise in the low bits for the lossless codecs.
        func value(_ i: Int) -> Double {
            let c = i % channels, p = i / channels, x = p % width, y = p / width
            return
                (Double(x) / Double(max(1, width - 1)) * 0.6 + Double(y) / Double(max(1, height - 1)) * 0.3
                + Double(c) * 0.05).truncatingRemainder(dividingBy: 1)
        }
        switch bitDepth {
        case 1:
            return Image(
                width: width, height: height, channels: channels,
                samples: .uint8((0..<n).map { _ in next() & 1 == 1 ? 255 : 0 }))
        case 8:
            return Image(
                width: width, height: height, channels: channels,
                samples: .uint8((0..<n).map { UInt8(min(255, value($0) * 250 + Double(next() % 4))) }))
        case 16:
            return Image(
                width: width, height: height, channels: channels,
                samples: .uint16((0..<n).map { UInt16(min(65535, value($0) * 65000 + Double(next() % 256))) }))
        default:
            return Image(
                width: width, height: height, channels: channels,
                samples: .float32((0..<n).map { Float(value($0)) - 0.25 + Float(next() % 1000) * 1e-6 }))
        }
    }

    struct Case: CustomStringConvertible {
        var layout: TIFFLayout
        var big = false
        var pages = 1
        var description: String {
            "\(layout.width)x\(layout.height)x\(layout.channels) \(layout.bitDepth)-bit "
                + "\(layout.tile.map { "tiles \($0)" } ?? "strips \(layout.stripRows)") \(layout.planar ? "planar" : "contiguous") "
                + "\(layout.compression) predictor \(layout.predictor) big \(big) pages \(pages)"
        }
    }

    static var cases: [Case] {
        var out: [Case] = []
        for bits in [1, 8, 16, 32] {
            for channels in bits == 1 ? [1] : [1, 3, 5] {
                for compression in TIFFCompression.allCases {
                    if compression == .jpeg && !(bits == 8 && channels != 5) { continue }
                    for planar in [false, true] where !(planar && channels == 1) && !(planar && compression == .jpeg) {
                        for tile: Int? in [nil, 32] {
                            var l = TIFFLayout(width: 77, height: 45, channels: channels, bitDepth: bits)
                            l.tile = tile
                            l.stripRows = compression == .jpeg ? 16 : 7  // JPEG strips: whole MCU rows
                            l.planar = planar
                            l.compression = compression
                            l.predictor = compression != .jpeg && bits != 1 && tile == nil
                            out.append(Case(layout: l))
                        }
                    }
                }
            }
        }
        var big = TIFFLayout(width: 300, height: 200, channels: 1, bitDepth: 16)
        big.tile = 64
        out.append(Case(layout: big, big: true, pages: 3))
        var pages = TIFFLayout(width: 40, height: 33, channels: 3, bitDepth: 8)
        pages.tile = nil
        pages.stripRows = 5
        out.append(Case(layout: pages, big: false, pages: 4))
        return out
    }

    func assertPixels(_ got: Image, _ want: Image, lossy: Bool, _ what: String) {
        XCTAssertEqual([got.width, got.height, got.channels], [want.width, want.height, want.channels], what)
        switch (got.samples, want.samples) {
        case (.uint8(let a), .uint8(let b)):
            if lossy {
                let err = zip(a, b).map { abs(Int($0) - Int($1)) }
                XCTAssertLessThan(Double(err.reduce(0, +)) / Double(err.count), 6, what)  // quality 90, 4:2:0 chroma
            } else {
                XCTAssertEqual(a, b, what)
            }
        case (.uint16(let a), .uint16(let b)): XCTAssertEqual(a, b, what)
        case (.float32(let a), .float32(let b)): XCTAssertEqual(a, b, what)
        default: XCTFail("\(what): sample types differ")
        }
    }

    func testEveryLayoutRoundTrips() throws {
        let folder = try TemporaryFolder()
        let all = Self.cases
        XCTAssertGreaterThan(all.count, 90)
        for (k, c) in all.enumerated() {
            let url = folder.file("case\(k).tif")
            let writer = try TIFFWriter(url: url, bigTIFF: c.big)
            var written: [Image] = []
            for p in 0..<c.pages {
                let page = Self.pattern(
                    width: c.layout.width, height: c.layout.height, channels: c.layout.channels,
                    bitDepth: c.layout.bitDepth, seed: k * 10 + p)
                written.append(page)
                try writer.beginPage(c.layout, description: "page \(p)")
                // Rows in uneven bands, as streaming writes them.
                var y = 0
                while y < page.height {
                    let n = min(page.height - y, 1 + (y * 7) % 11)
                    try writer.write(page.cropped(x: 0, y: y, width: page.width, height: n))
                    y += n
                }
                try writer.endPage()
            }
            try writer.close()
            let lossy = c.layout.compression == .jpeg
            let file = try TIFFFile(url: url)
            XCTAssertEqual(file.pageCount, c.pages, "\(c)")
            XCTAssertEqual(file.isBigTIFF, c.big, "\(c)")
            for p in 0..<c.pages {
                let info = try file.page(p)
                XCTAssertEqual(info.tiled, c.layout.tile != nil, "\(c)")
                XCTAssertEqual(info.planar, c.layout.planar, "\(c)")
                XCTAssertEqual(info.compression, c.layout.compression.rawValue, "\(c)")
                XCTAssertEqual(info.description, "page \(p)", "\(c)")
                assertPixels(try file.rows(0..<c.layout.height, page: p), written[p], lossy: lossy, "\(c) page \(p)")
                // A window read after a later one (the kept block is not the one needed).
                let window = 9..<min(c.layout.height, 40)
                assertPixels(
                    try file.rows(window, page: p),
                    written[p].cropped(x: 0, y: window.lowerBound, width: c.layout.width, height: window.count),
                    lossy: lossy, "\(c) page \(p) rows \(window)")
                // Windows off the block grid (tiles decoded straight to the window; strips through the kept block).
                for (x, y, w, h) in [(3, 5, 40, 30), (31, 0, 2, 45), (0, 44, 77, 1), (50, 17, 27, 28)]
                where x + w <= c.layout.width && y + h <= c.layout.height {
                    assertPixels(
                        try file.window(PixelWindow(x: x, y: y, width: w, height: h), page: p),
                        written[p].cropped(x: x, y: y, width: w, height: h), lossy: lossy,
                        "\(c) page \(p) window \(x),\(y) \(w)x\(h)")
                }
            }
            // The in-memory path every command's decode takes: the first page, slices counted.
            let data = try Data(contentsOf: url)
            XCTAssertEqual(ImageFormat.sniff(data), .tiff)
            assertPixels(try ImageCodec.decode(data, file: url.path), written[0], lossy: lossy, "\(c) decode")
            XCTAssertEqual(try ImageCodec.info(of: data, file: url.path).slices, c.pages, "\(c)")
        }
    }

    func testTiledRegionsInAnyOrder() throws {
        let folder = try TemporaryFolder()
        for bits in [1, 8, 16, 32] {
            for planar in [false, true] {
                let channels = bits == 1 ? 1 : 2
                let image = Self.pattern(width: 100, height: 70, channels: channels, bitDepth: bits)
                var layout = TIFFLayout(width: 100, height: 70, channels: channels, bitDepth: bits)
                layout.tile = 32
                layout.planar = planar && channels > 1
                let url = folder.file("regions\(bits)\(planar).tif")
                let writer = try TIFFWriter(url: url, bigTIFF: false)
                try writer.beginPage(layout)
                // Regions of whole tiles, bottom-right first; the last row and column are partial.
                for (x, y, w, h) in [(64, 64, 36, 6), (0, 64, 64, 6), (64, 0, 36, 64), (0, 32, 64, 32), (0, 0, 64, 32)]
                {
                    try writer.writeTiles(image.cropped(x: x, y: y, width: w, height: h), x: x, y: y)
                }
                XCTAssertThrowsError(
                    try writer.writeTiles(image.cropped(x: 0, y: 0, width: 10, height: 32), x: 0, y: 0))
                try writer.endPage()
                try writer.close()
                assertPixels(
                    try TIFFFile(url: url).rows(0..<70, page: 0), image, lossy: false, "\(bits)-bit planar \(planar)")
            }
        }
    }

    func testPagesAsChannelsAndOMEOrder() throws {
        let folder = try TemporaryFolder()
        // 2 channels x 3 z planes, stored ZCT: page = z + 3 * c.
        let planes = (0..<6).map { Self.pattern(width: 20, height: 10, channels: 1, bitDepth: 16, seed: $0) }
        let ome = """
            <?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0">\
            <Pixels DimensionOrder="XYZCT" ID="Pixels:0" SizeC="2" SizeT="1" SizeX="20" SizeY="10" SizeZ="3" \
            Type="uint16"><Channel ID="Channel:0:0" Name="DAPI"/><Channel ID="Channel:0:1" Name="GFP"/>\
            </Pixels></Image></OME>
            """
        let url = folder.file("stack.ome.tif")
        let writer = try TIFFWriter(url: url, bigTIFF: false)
        for (p, plane) in planes.enumerated() {
            try writer.beginPage(
                TIFFLayout(width: 20, height: 10, channels: 1, bitDepth: 16), description: p == 0 ? ome : nil)
            try writer.write(plane)
            try writer.endPage()
        }
        try writer.close()
        let file = try TIFFFile(url: url)
        let stack = try TIFFStack(file, pages: .auto)
        XCTAssertEqual(stack.slices, [[0, 3], [1, 4], [2, 5]])
        XCTAssertEqual(stack.channelNames, ["DAPI", "GFP"])
        let slice1 = try stack.rows(0..<10, slice: 1, of: file)
        XCTAssertEqual(slice1.channels, 2)
        for y in [0, 9] {
            for x in [0, 7, 19] {
                XCTAssertEqual(slice1.sample(x: x, y: y, channel: 0), planes[1].sample(x: x, y: y, channel: 0))
                XCTAssertEqual(slice1.sample(x: x, y: y, channel: 1), planes[4].sample(x: x, y: y, channel: 0))
            }
        }
        XCTAssertEqual(try TIFFStack(file, pages: .slices).slices.count, 6)
        // Sizes that do not account for the pages (or overflow when multiplied) are refused, never trusted.
        let good = "SizeC=\"2\" SizeT=\"1\" SizeX=\"20\" SizeY=\"10\" SizeZ=\"3\""
        for (k, sizes) in [
            "SizeC=\"2\" SizeT=\"1\" SizeX=\"20\" SizeY=\"10\" SizeZ=\"4\"",
            "SizeC=\"4611686018427387904\" SizeT=\"4\" SizeX=\"20\" SizeY=\"10\" SizeZ=\"4\""
        ].enumerated() {
            let bad = folder.file("bad\(k).ome.tif")
            let w = try TIFFWriter(url: bad, bigTIFF: false)
            for (p, plane) in planes.enumerated() {
                try w.beginPage(
                    TIFFLayout(width: 20, height: 10, channels: 1, bitDepth: 16),
                    description: p == 0 ? ome.replacingOccurrences(of: good, with: sizes) : nil)
                try w.write(plane)
                try w.endPage()
            }
            try w.close()
            XCTAssertThrowsError(try TIFFStack(TIFFFile(url: bad), pages: .auto)) {
                XCTAssertTrue("\($0)".contains("bad\(k).ome.tif") && "\($0)".contains("does not match"), "\($0)")
            }
        }
        let channels = try TIFFStack(file, pages: .channels)
        XCTAssertEqual(channels.slices, [[0, 1, 2, 3, 4, 5]])
        XCTAssertEqual(channels.channels, 6)
    }
}
