import Foundation
import TesseraData
import TestSupport
import XCTest

/// 32-bit unsigned TIFF pages (label images past 65535 objects, `segment --instances`): written by tiled regions,
/// read back as floats, exact up to 2^24.
final class TIFFLabelTests: XCTestCase {
    func testThirtyTwoBitLabelsRoundTrip() throws {
        let folder = try TemporaryFolder()
        let url = folder.file("labels.tif")
        let w = 300, h = 270
        let labels = (0..<(w * h)).map { UInt32(($0 * 7919) % 16_777_216) }
        var layout = TIFFLayout(width: w, height: h, channels: 1, bitDepth: 32)
        layout.unsigned32 = true
        let writer = try TIFFWriter(url: url, bigTIFF: false)
        try writer.beginPage(layout)
        // Regions in any order: the right column of tiles first.
        for (x, y) in [(256, 0), (0, 0), (0, 256), (256, 256)] {
            let rw = min(256, w - x), rh = min(256, h - y)
            var part: [UInt32] = []
            for r in 0..<rh {
                let start = (y + r) * w + x
                part += labels[start..<(start + rw)]
            }
            try writer.writeTiles(labels: part, width: rw, height: rh, x: x, y: y)
        }
        try writer.endPage()
        try writer.close()
        let image = try ImageCodec.decode(url)
        guard case .float32(let read) = image.samples else { return XCTFail("32-bit samples read as floats") }
        XCTAssertEqual(read.map { UInt32($0) }, labels)
        XCTAssertEqual(try ImageCodec.info(of: url).bitDepth, 32)
        // A float page is not a label page: the writer refuses labels there.
        let other = try TIFFWriter(url: folder.file("float.tif"), bigTIFF: false)
        try other.beginPage(TIFFLayout(width: 16, height: 16, channels: 1, bitDepth: 32))
        XCTAssertThrowsError(
            try other.writeTiles(labels: [UInt32](repeating: 1, count: 256), width: 16, height: 16, x: 0, y: 0))
    }
}
